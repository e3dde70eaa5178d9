package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gossipbus/gossip/gossip/driver"
)

const (
	// ackTimeout bounds a request to the server without a ctx deadline: a
	// lone PubAck, a double ack, a consumer lookup, a flush.
	ackTimeout = 5 * time.Second
	// publishTimeout bounds the wait for a PubAck of a batch.
	publishTimeout = 10 * time.Second
)

// ensureStream makes sure the connection's stream exists and captures
// "<prefix>.>": it creates it when missing (unless CreateStreams(false)),
// and uses an existing one as it is.
func (c *Conn) ensureStream(ctx context.Context) error {
	c.streamMu.Lock()
	defer c.streamMu.Unlock()
	if c.streamReady {
		return nil
	}
	subject := c.cfg.prefix + ".>"
	s, err := c.js.Stream(ctx, c.cfg.stream)
	switch {
	case err == nil:
		if !coversAny(s.CachedInfo().Config.Subjects, subject) {
			return fmt.Errorf("nats: stream %s exists but does not capture %q (its subjects: %v)", c.cfg.stream, subject, s.CachedInfo().Config.Subjects)
		}
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if !c.cfg.createStreams {
			return fmt.Errorf("nats: stream %s not found and CreateStreams is off: create it with subjects %q", c.cfg.stream, subject)
		}
		_, err = c.js.CreateStream(ctx, c.streamConfig())
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("nats: create stream %s: %w", c.cfg.stream, err)
		}
	default:
		return fmt.Errorf("nats: look up stream %s: %w", c.cfg.stream, err)
	}
	c.streamReady = true
	return nil
}

func (c *Conn) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        c.cfg.stream,
		Description: "gossip events under " + c.cfg.prefix + ".>",
		Subjects:    []string{c.cfg.prefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.cfg.maxAge,
		MaxBytes:    c.cfg.maxBytes,
		MaxMsgs:     c.cfg.maxMsgs,
		Storage:     c.cfg.storage,
		Replicas:    c.cfg.replicas,
		Duplicates:  c.cfg.duplicates,
	}
}

// coversAny reports whether one of the stream subjects captures every
// subject that subject (a pattern ending in ">") matches.
func coversAny(streamSubjects []string, subject string) bool {
	for _, s := range streamSubjects {
		if covers(s, subject) {
			return true
		}
	}
	return false
}

func covers(wide, narrow string) bool {
	w, n := strings.Split(wide, "."), strings.Split(narrow, ".")
	for i, tok := range w {
		switch {
		case tok == ">":
			return i < len(n)
		case i >= len(n):
			return false
		case tok == "*":
			if n[i] == ">" {
				return false
			}
		case tok != n[i]:
			return false
		}
	}
	return len(w) == len(n)
}

// deadLetterPrefix starts the type of every dead letter
// (gossip.DeadLetterType).
const deadLetterPrefix = "dead_letter."

// jsMessage is m as a JetStream message on its subject. An event carries
// Nats-Msg-Id "<type>:<id>", so that JetStream drops a retried publish. A
// dead letter carries none: each subscription that gives up on an event
// publishes its own, with the event's type and ID, and each must be kept.
func (c *Conn) jsMessage(m *driver.Message) *natsgo.Msg {
	var msgID string
	if !strings.HasPrefix(m.Type, deadLetterPrefix) {
		msgID = m.Type + ":" + m.ID
	}
	return encodeMessage(c.Subject(m.Type), m, msgID)
}

// publishJS sends every message with an asynchronous publish, then waits
// for each one's PubAck: a batch costs one round trip, and concurrent
// callers' messages share nats.go's writes while each waits for its own
// PubAck (no timer, no waiting for other callers).
func (c *Conn) publishJS(ctx context.Context, msgs []*driver.Message) error {
	if err := c.ensureStream(ctx); err != nil {
		return err
	}
	stall := ackTimeout
	if dl, ok := ctx.Deadline(); ok {
		stall = max(time.Until(dl), time.Millisecond)
	}
	opt := jetstream.WithStallWait(stall)
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := c.js.PublishMsgAsync(c.jsMessage(m), opt)
		if err != nil {
			return c.publishError(ctx, m, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		if err := c.pubAck(ctx, f, msgs[i]); err != nil {
			return err
		}
	}
	return nil
}

// pubAck waits for the PubAck of m (jetstream's publish timeout bounds the
// wait when ctx has no deadline).
func (c *Conn) pubAck(ctx context.Context, f jetstream.PubAckFuture, m *driver.Message) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return c.publishError(ctx, m, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}
