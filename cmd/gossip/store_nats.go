package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natsdriver "github.com/gossipbus/gossip/drivers/nats"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// natsStore reads the connection's JetStream stream.
type natsStore struct {
	c  *natsdriver.Conn
	js jetstream.JetStream
}

func natsStoreOf(conn driver.Conn) (store, bool) {
	c, ok := conn.(*natsdriver.Conn)
	if !ok || c.Mode() != natsdriver.ModeJetStream {
		return nil, false
	}
	js, err := jetstream.New(c.NATS())
	if err != nil {
		return nil, false
	}
	return &natsStore{c: c, js: js}, true
}

func (s *natsStore) stream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, s.c.Stream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("stream %s not found: nothing was published with prefix %q on this server", s.c.Stream(), s.c.Prefix())
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", s.c.Stream(), err)
	}
	return st, nil
}

// maxFetch bounds the messages one read of the dead letters fetches.
const maxFetch = 1_000_000

func (s *natsStore) deadLetters(ctx context.Context, fn func(stored) bool) error {
	st, err := s.stream(ctx)
	if err != nil {
		return err
	}
	subject := s.c.Subject(gossip.DeadLetterPrefix + ".>")
	// An ordered consumer: ephemeral, in memory, and gone when the command
	// ends; it changes nothing a group sees.
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return fmt.Errorf("read %s from stream %s: %w", subject, s.c.Stream(), err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read %s from stream %s: %w", subject, s.c.Stream(), err)
	}
	left := info.NumPending
	var last uint64 // the stream sequence of the last message read
	remade := false
	for read := 0; left > 0 && read < maxFetch; {
		batch, err := cons.Fetch(int(min(left, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("read %s from stream %s: %w", subject, s.c.Stream(), err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			read++
			md, err := msg.Metadata()
			if err != nil {
				return err
			}
			left, last = md.NumPending, md.Sequence.Stream
			m, derr := s.c.Decode(msg.Subject(), msg.Headers(), msg.Data())
			if !fn(stored{Msg: m, Err: derr, Stored: md.Timestamp, ref: md.Sequence.Stream}) {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("read %s from stream %s: %w", subject, s.c.Stream(), err)
		}
		if got > 0 {
			remade = false
			continue
		}
		if remade {
			return fmt.Errorf("read %s from stream %s: no message within 5s while %d are left", subject, s.c.Stream(), left)
		}
		// Nothing came although messages are left: the ordered consumer
		// lost its place (seen under load). A new one starts after the last
		// message read, once.
		remade = true
		cons, err = st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject},
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last + 1})
		if err != nil {
			return fmt.Errorf("read %s from stream %s: %w", subject, s.c.Stream(), err)
		}
	}
	return nil
}

func (s *natsStore) remove(ctx context.Context, m stored) error {
	st, err := s.stream(ctx)
	if err != nil {
		return err
	}
	seq := m.ref.(uint64)
	if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete message %d from stream %s: %w", seq, s.c.Stream(), err)
	}
	return nil
}

func (s *natsStore) groups(ctx context.Context) ([]groupState, error) {
	st, err := s.stream(ctx)
	if err != nil {
		return nil, err
	}
	var out []groupState
	list := st.ListConsumers(ctx)
	for ci := range list.Info() {
		if ci.Config.Durable == "" {
			continue // a broadcast listener (gossip tail), not a group
		}
		g := groupState{
			Group:     ci.Config.Durable,
			Pattern:   strings.TrimPrefix(ci.Config.FilterSubject, s.c.Prefix()+"."),
			Pending:   int64(ci.NumPending),
			Unacked:   int64(ci.NumAckPending),
			Consumers: ci.NumWaiting,
		}
		if name, ok := strings.CutPrefix(ci.Config.Description, "gossip group "); ok {
			g.Group, _, _ = strings.Cut(name, " on ")
		}
		if g.Pending+g.Unacked > 0 {
			// The first event past the ack floor is the oldest not handled.
			msg, err := st.GetMsg(ctx, ci.AckFloor.Stream+1, jetstream.WithGetMsgSubject(ci.Config.FilterSubject))
			if err == nil {
				g.Oldest = msg.Time
			}
		}
		out = append(out, g)
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("list the consumers of stream %s: %w", s.c.Stream(), err)
	}
	return out, nil
}

func (s *natsStore) forget(ctx context.Context, t string) error {
	st, err := s.stream(ctx)
	if err != nil {
		return err
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject(s.c.Subject(t)))
}
