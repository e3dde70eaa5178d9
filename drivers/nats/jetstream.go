package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gossipbus/gossip/gossip/driver"
)

const (
	// ackTimeout bounds a request to the server without a ctx deadline: a
	// double ack, a consumer lookup, a flush.
	ackTimeout = 5 * time.Second
	// publishTimeout bounds the wait for a PubAck.
	publishTimeout = 10 * time.Second
	// fetchExpiry bounds one pull request; fetchHeartbeat is how often the
	// server says it is still there during one, so a lost server is noticed
	// within two heartbeats.
	fetchExpiry    = 20 * time.Second
	fetchHeartbeat = time.Second
	// drainTimeout bounds the wait for the server to confirm the end of a
	// stopped subscription's pull.
	drainTimeout = 2 * time.Second
)

// ensureStream makes sure the connection's stream exists and captures
// "<prefix>.>": it creates it when missing (unless CreateStreams(false)),
// and uses an existing one as it is.
func (c *Conn) ensureStream(ctx context.Context) error {
	c.streamMu.Lock()
	defer c.streamMu.Unlock()
	if c.streamReady.Load() {
		return nil
	}
	subject := c.cfg.prefix + ".>"
	s, err := c.js.Stream(ctx, c.cfg.stream)
	switch {
	case err == nil:
		subjects := s.CachedInfo().Config.Subjects
		if !slices.ContainsFunc(subjects, func(s string) bool { return covers(s, subject) }) {
			return fmt.Errorf("nats: stream %s exists but does not capture %q (its subjects: %v)", c.cfg.stream, subject, subjects)
		}
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if !c.cfg.createStreams {
			return fmt.Errorf("nats: stream %s not found and CreateStreams is off: create it with subjects %q", c.cfg.stream, subject)
		}
		_, err = c.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        c.cfg.stream,
			Description: "gossip events under " + subject,
			Subjects:    []string{subject},
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      c.cfg.maxAge,
			MaxBytes:    c.cfg.maxBytes,
			MaxMsgs:     c.cfg.maxMsgs,
			Storage:     c.cfg.storage,
			Replicas:    c.cfg.replicas,
			Duplicates:  c.cfg.duplicates,
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("nats: create stream %s (replicas=%d, max_age=%v, duplicates=%v): %w",
				c.cfg.stream, c.cfg.replicas, c.cfg.maxAge, c.cfg.duplicates, err)
		}
	default:
		return fmt.Errorf("nats: look up stream %s: %w", c.cfg.stream, err)
	}
	c.streamReady.Store(true)
	return nil
}

// covers reports whether the stream subject wide captures every subject
// that narrow (a pattern ending in ">") matches.
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
func (c *Conn) jsMessage(m *driver.Message) *wireMsg {
	var msgID string
	if !strings.HasPrefix(m.Type, deadLetterPrefix) {
		msgID = m.Type + ":" + m.ID
	}
	return encodeMessage(c.publishSubject(m.Type), m, msgID)
}

// defaultPublishOpts bound the wait for room among nats.go's pending
// PubAcks when the caller's ctx has no deadline.
var defaultPublishOpts = []jetstream.PublishOpt{jetstream.WithStallWait(ackTimeout)}

// publishJS sends every message with an asynchronous publish, then waits
// for each one's PubAck: a batch costs one round trip, and concurrent
// callers' messages share nats.go's writes while each waits for its own
// PubAck (no waiting for other callers). A single message goes as a
// request that the PubAck answers, which needs none of the asynchronous
// publish's bookkeeping (its future, its reply token, its timer).
func (c *Conn) publishJS(ctx context.Context, msgs []*driver.Message) error {
	if err := c.ensureStream(ctx); err != nil {
		return err
	}
	if len(msgs) == 1 {
		w := c.jsMessage(msgs[0])
		// A lost PubAck fails it after publishTimeout, as it fails a batch.
		rctx, cancel := context.WithTimeout(ctx, publishTimeout)
		_, err := c.js.PublishMsg(rctx, &w.Msg)
		cancel()
		if err != nil {
			return c.publishError(ctx, msgs[0], err)
		}
		w.release() // answered: nats.go no longer sends it
		return nil
	}
	opts := defaultPublishOpts // one list for every message, not one each
	if dl, ok := ctx.Deadline(); ok {
		opts = []jetstream.PublishOpt{jetstream.WithStallWait(max(time.Until(dl), time.Millisecond))}
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	wire := make([]*wireMsg, 0, len(msgs))
	for _, m := range msgs {
		w := c.jsMessage(m)
		f, err := c.js.PublishMsgAsync(&w.Msg, opts...)
		if err != nil {
			return c.publishError(ctx, m, err)
		}
		futures = append(futures, f)
		wire = append(wire, w)
	}
	// jetstream's publish timeout bounds the wait when ctx has no deadline.
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return c.publishError(ctx, msgs[i], err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Every message has its PubAck: nats.go is done with them.
	for _, w := range wire {
		w.release()
	}
	return nil
}

// pullBackoff spaces the pull requests after one failed.
var pullBackoff = driver.Backoff{Initial: 50 * time.Millisecond, Max: 2 * time.Second}

// jsSub is a subscription on a JetStream pull consumer: durable for a
// group, ephemeral for a broadcast listener. It implements driver.Acker,
// Nacker, KeepAliver and Releaser.
type jsSub struct {
	c    *Conn
	cfg  jetstream.ConsumerConfig // to make the consumer again if it vanishes
	cons jetstream.Consumer       // replaced only by the pull goroutine
	name string
	pull int // messages the client pulls ahead (nats.go's buffer)
	ch   chan driver.Delivery

	stopping context.Context // cancelled by Stop: drain the pull, then end
	stop     context.CancelFunc
	aborting context.Context // cancelled by Close: end the pull at once
	abort    context.CancelFunc
	pulled   chan struct{}   // closed when the pull goroutine has ended (and ch with it)
	returned []jetstream.Msg // pulled after Stop; given back when the pull ends

	backMu    sync.Mutex
	backWaits []func(ctx context.Context) error // for the naks of what was given back (Close waits)
	closeOnce sync.Once
	closeErr  error
}

func (c *Conn) subscribeJS(ctx context.Context, spec driver.SubscribeSpec) (driver.Subscription, error) {
	if err := c.ensureStream(ctx); err != nil {
		return nil, err
	}
	filter := c.Subject(spec.Pattern)
	cfg := jetstream.ConsumerConfig{
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       spec.AckWait,
		MaxDeliver:    -1, // gossip counts deliveries and dead-letters itself
		DeliverPolicy: jetstream.DeliverNewPolicy,
		MaxAckPending: c.cfg.maxAckPending,
	}
	if spec.Group == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Name = "gossip_bcast_" + hex.EncodeToString(b[:])
		cfg.Description = "gossip broadcast listener on " + filter
		cfg.InactiveThreshold = c.cfg.inactiveThreshold
	} else {
		cfg.Durable = consumerName(spec.Group, spec.Pattern)
		cfg.Description = "gossip group " + spec.Group + " on " + filter
		if spec.Start == driver.StartOldest {
			cfg.DeliverPolicy = jetstream.DeliverAllPolicy
		}
	}
	cons, err := c.makeConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("nats: consumer on %s: %w", filter, err)
	}
	// BufferSize is shared between nats.go's pull buffer and the Deliveries
	// channel, so that at most BufferSize + Workers are unsettled.
	pull := max(1, spec.BufferSize/2)
	s := &jsSub{c: c, cfg: cfg, cons: cons, name: cons.CachedInfo().Name, pull: pull,
		ch: make(chan driver.Delivery, max(1, spec.BufferSize-pull)), pulled: make(chan struct{})}
	s.stopping, s.stop = context.WithCancel(context.Background())
	s.aborting, s.abort = context.WithCancel(context.Background())
	go s.pullLoop()
	return s, nil
}

// makeConsumer creates a broadcast listener's consumer, or returns a
// group's durable one, creating it on first use. A later member joins it as
// it is (its start position was fixed when it was created); only AckWait
// follows the newest member.
func (c *Conn) makeConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if cfg.Durable == "" {
		return c.js.CreateConsumer(ctx, c.cfg.stream, cfg)
	}
	cons, err := c.js.Consumer(ctx, c.cfg.stream, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = c.js.CreateConsumer(ctx, c.cfg.stream, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			cons, err = c.js.Consumer(ctx, c.cfg.stream, cfg.Durable)
		}
	}
	if err != nil {
		return nil, err
	}
	if have := cons.CachedInfo().Config; have.AckWait != cfg.AckWait {
		have.AckWait = cfg.AckWait
		if updated, err := c.js.UpdateConsumer(ctx, c.cfg.stream, have); err == nil {
			cons = updated
		} else {
			c.cfg.logger.Warn("nats: cannot update the group's AckWait", "consumer", cfg.Durable, "error", err)
		}
	}
	return cons, nil
}

func (s *jsSub) Deliveries() <-chan driver.Delivery { return s.ch }

// pullLoop pulls messages continuously (a new pull request whenever half of
// the pull buffer is used, so the pipe never runs dry) and hands them to
// gossip until Stop; then it closes the Deliveries channel.
func (s *jsSub) pullLoop() {
	defer close(s.pulled)
	defer close(s.ch)
	defer func() { s.giveBack(s.returned) }() // before Stop returns
	for failures := 1; ; failures++ {
		got, err := s.pullUntilError()
		if s.stopping.Err() != nil {
			return
		}
		if got {
			failures = 1
		}
		s.c.cfg.logger.Debug("nats: pulling failed; retrying", "consumer", s.name, "error", err)
		// Whatever ended the pull (a 409 Consumer Deleted, missed
		// heartbeats, no responders), check whether the consumer is still
		// there; remakeIfGone asks the server before it makes anything.
		s.remakeIfGone()
		if !pullBackoff.Wait(s.stopping, failures) {
			return
		}
	}
}

// pullUntilError hands messages over until the pull fails or Stop drains
// it. Draining unsubscribes and waits for the server to confirm, giving
// back what arrives meanwhile: once it ends, the server sends this
// subscription nothing more. Without a server to confirm (the connection is
// down) the drain is cut short after drainTimeout, or at once; Close cuts
// it at once.
func (s *jsSub) pullUntilError() (got bool, err error) {
	it, err := s.cons.Messages(jetstream.PullMaxMessages(s.pull),
		jetstream.PullExpiry(fetchExpiry), jetstream.PullHeartbeat(fetchHeartbeat))
	if err != nil {
		return false, err
	}
	defer it.Stop()
	pulling, cut := context.WithCancel(s.aborting)
	drained := make(chan struct{})
	defer func() { cut(); <-drained }()
	go func() {
		defer close(drained)
		select {
		case <-pulling.Done():
			return
		case <-s.stopping.Done():
		}
		if s.c.nc.IsConnected() {
			it.Drain()
			select {
			case <-time.After(drainTimeout):
			case <-pulling.Done(): // drained, or Close
			}
		}
		cut()
	}()
	next := []jetstream.NextOpt{jetstream.NextContext(pulling)} // one list, not one per message
	for {
		msg, err := it.Next(next...)
		if err != nil {
			if s.stopping.Err() != nil && s.aborting.Err() == nil {
				s.takeBuffered(it)
			}
			return got, err
		}
		got = true
		s.handOver(msg)
	}
}

// takeBuffered hands over (to be given back) what the iterator still
// buffers when a drain was cut short (a slow server): dropped with the
// iterator, those messages would wait out AckWait before another member
// got them.
func (s *jsSub) takeBuffered(it jetstream.MessagesContext) {
	for range s.pull + 1 {
		msg, err := it.Next(jetstream.NextMaxWait(10 * time.Millisecond))
		if err != nil {
			return
		}
		s.handOver(msg)
	}
}

// remakeIfGone makes the consumer again when the server no longer has it
// (an operator deleted it, a broadcast consumer outlived its inactive
// threshold, a server lost its memory store). It starts afresh: a durable
// one from the events published from now on, or as its group's Start says.
func (s *jsSub) remakeIfGone() {
	ctx, cancel := context.WithTimeout(s.stopping, ackTimeout)
	defer cancel()
	if _, err := s.cons.Info(ctx); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return // still there (or the server is away): keep pulling
	}
	s.c.cfg.logger.Warn("nats: consumer is gone; making it again", "stream", s.c.cfg.stream, "consumer", s.name)
	s.c.streamReady.Store(false)
	if err := s.c.ensureStream(ctx); err != nil {
		s.c.cfg.logger.Warn("nats: cannot make the stream again", "stream", s.c.cfg.stream, "error", err)
		return
	}
	cons, err := s.c.makeConsumer(ctx, s.cfg)
	if err != nil {
		s.c.cfg.logger.Warn("nats: cannot make the consumer again", "consumer", s.name, "error", err)
		return
	}
	s.cons = cons
}

// handOver gives one pulled message to gossip or, once Stop came, gives it
// back to the server at once for another member.
func (s *jsSub) handOver(msg jetstream.Msg) {
	if s.stopping.Err() == nil {
		m, err := s.c.decode(msg.Subject(), msg.Headers(), msg.Data())
		d := driver.Delivery{Message: m, Err: err, Attempt: 1, Token: msg}
		if n, ok := numDelivered(msg.Reply()); ok {
			d.Attempt = n
		} else if md, err := msg.Metadata(); err == nil {
			d.Attempt = int(md.NumDelivered)
		}
		select {
		case s.ch <- d:
			return
		case <-s.stopping.Done():
		}
	}
	s.returned = append(s.returned, msg)
}

// nakBody is JetStream's negative acknowledgement: redeliver at once.
var nakBody = []byte("-NAK")

// giveBack naks msgs now; Close waits for the server to have processed
// the naks (a settling call must not: the next one waits for it).
func (s *jsSub) giveBack(msgs []jetstream.Msg) {
	if len(msgs) == 0 {
		return
	}
	wait := s.nakAll(msgs)
	s.backMu.Lock()
	s.backWaits = append(s.backWaits, wait)
	s.backMu.Unlock()
}

// nakAll naks msgs at once, each as a request, which the server answers
// after it put the message back in its redelivery queue; the returned wait
// returns once every answer came (or ctx ended). A member taking over the
// group after the wait (an Exclusive handover) gets them before newer
// messages.
func (s *jsSub) nakAll(msgs []jetstream.Msg) (wait func(ctx context.Context) error) {
	if len(msgs) == 0 {
		return func(context.Context) error { return nil }
	}
	nc := s.c.nc
	inbox := nc.NewRespInbox()
	replies, err := nc.SubscribeSync(inbox)
	if err != nil { // nak them without waiting
		errs := []error{err}
		for _, m := range msgs {
			errs = append(errs, m.Nak())
		}
		return func(context.Context) error { return errors.Join(errs...) }
	}
	sent := 0
	var errs []error
	for _, m := range msgs {
		if err := nc.PublishRequest(m.Reply(), inbox, nakBody); err != nil {
			errs = append(errs, err)
			continue
		}
		sent++
	}
	return func(ctx context.Context) error {
		defer replies.Unsubscribe()
		ctx, cancel := withDeadline(ctx)
		defer cancel()
		for range sent {
			if _, err := replies.NextMsgWithContext(ctx); err != nil {
				return errors.Join(append(errs, fmt.Errorf("nats: waiting for the server to take back %d messages: %w", sent, err))...)
			}
		}
		return errors.Join(errs...)
	}
}

// settleEach calls settle with the JetStream message of every delivery and
// returns what failed; it goes on after a failure.
func settleEach(ds []driver.Delivery, settle func(jetstream.Msg) error) error {
	var errs []error
	for _, d := range ds {
		msg, ok := d.Token.(jetstream.Msg)
		if !ok {
			errs = append(errs, errors.New("nats: a delivery this subscription did not make"))
			continue
		}
		if err := settle(msg); err != nil {
			errs = append(errs, fmt.Errorf("nats: settle %s: %w", d.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Ack acknowledges the deliveries. By default it sends the acks without
// waiting for a reply (Conn.Close flushes acks still buffered); with SyncAck
// it waits for the server to confirm each.
func (s *jsSub) Ack(ctx context.Context, ds []driver.Delivery) error {
	if !s.c.cfg.syncAck {
		return settleEach(ds, jetstream.Msg.Ack)
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	return settleEach(ds, func(msg jetstream.Msg) error { return msg.DoubleAck(ctx) })
}

// Nack asks the server to redeliver the deliveries after delay (at once
// when it is not positive).
func (s *jsSub) Nack(_ context.Context, ds []driver.Delivery, delay time.Duration) error {
	return settleEach(ds, func(msg jetstream.Msg) error { return msg.NakWithDelay(delay) })
}

// KeepAlive tells the server the deliveries are still being worked on, so
// it does not hand them to another member when the ack wait is over.
func (s *jsSub) KeepAlive(_ context.Context, ds []driver.Delivery) error {
	return settleEach(ds, jetstream.Msg.InProgress)
}

// Release gives deliveries that were never started back to the server at
// once, for another member; Close returns once the server has them.
func (s *jsSub) Release(ctx context.Context, ds []driver.Delivery) error {
	msgs := make([]jetstream.Msg, 0, len(ds))
	var errs []error
	for _, d := range ds {
		msg, ok := d.Token.(jetstream.Msg)
		if !ok {
			errs = append(errs, errors.New("nats: a delivery this subscription did not make"))
			continue
		}
		msgs = append(msgs, msg)
	}
	s.giveBack(msgs)
	return errors.Join(errs...)
}

// Stop ends the pull: the server is told to send nothing more, and what
// arrives meanwhile goes back to it at once. It returns once the
// Deliveries channel is closed.
func (s *jsSub) Stop(ctx context.Context) error {
	s.stop()
	select {
	case <-s.pulled:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the subscription if Stop did not (cutting a drain short when
// ctx ends) and deletes a broadcast listener's consumer. It returns once
// the pull goroutine has ended.
func (s *jsSub) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.stop()
		defer context.AfterFunc(ctx, s.abort)()
		<-s.pulled
		s.abort()
		// The server has what was given back before Close returns: a member
		// taking over afterwards (an Exclusive handover) gets it first.
		s.backMu.Lock()
		waits := s.backWaits
		s.backWaits = nil
		s.backMu.Unlock()
		for _, wait := range waits {
			if err := wait(ctx); err != nil {
				s.c.cfg.logger.Debug("nats: giving back messages", "consumer", s.name, "error", err)
			}
		}
		if s.cfg.Durable != "" || s.c.nc.IsClosed() {
			return
		}
		dctx, cancel := context.WithTimeout(ctx, ackTimeout)
		defer cancel()
		err := s.c.js.DeleteConsumer(dctx, s.c.cfg.stream, s.name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			// The server drops it after InactiveThreshold anyway.
			s.closeErr = fmt.Errorf("nats: delete consumer %s: %w", s.name, err)
		}
	})
	return s.closeErr
}

// numDelivered reads the delivery count from the reply subject of a
// JetStream message, without the allocation of Msg.Metadata:
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>, or
// (newer servers) $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.
// <delivered>. ... with 11 tokens or more. ok is false for any other
// subject; the caller asks Metadata then.
func numDelivered(reply string) (n int, ok bool) {
	const prefix = "$JS.ACK."
	if !strings.HasPrefix(reply, prefix) {
		return 0, false
	}
	var pos int // the token, counted from 0 at $JS, that holds the count
	switch tokens := strings.Count(reply, ".") + 1; {
	case tokens == 9:
		pos = 4
	case tokens >= 11:
		pos = 6
	default:
		return 0, false
	}
	rest := reply
	for range pos {
		rest = rest[strings.IndexByte(rest, '.')+1:]
	}
	tok, _, _ := strings.Cut(rest, ".")
	if tok == "" || len(tok) > 9 {
		return 0, false
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c < '0' || c > '9' {
			return 0, false
		} else {
			n = 10*n + int(c-'0')
		}
	}
	return n, true
}
