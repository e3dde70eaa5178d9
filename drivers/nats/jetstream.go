package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gossipbus/gossip/gossip/driver"
)

// fetchExpiry bounds one pull request; fetchHeartbeat is how often the
// server says it is still there during one, so a lost server is noticed
// within two heartbeats.
const (
	fetchExpiry    = 20 * time.Second
	fetchHeartbeat = time.Second
	ackTimeout     = 5 * time.Second
	// drainTimeout bounds the wait for the server to confirm the end of a
	// closed subscription's pull.
	drainTimeout = 2 * time.Second
	// publishTimeout bounds the wait for a PubAck of a batch; a lone
	// publish without a ctx deadline waits jetstream's default (5s).
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
	if len(msgs) == 1 {
		f, err := c.js.PublishMsgAsync(c.jsMessage(msgs[0]), opt)
		if err != nil {
			return c.publishError(ctx, msgs[0], err)
		}
		return c.pubAck(ctx, f, msgs[0])
	}
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

func (c *Conn) publishError(ctx context.Context, m *driver.Message, err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, natsgo.ErrNoResponders) {
		// No stream answered: look it up (and create it) again next time.
		c.streamMu.Lock()
		c.streamReady = false
		c.streamMu.Unlock()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("nats: publish %s (%s): %w", m.ID, m.Type, err)
}

// jsSub is a subscription on a JetStream pull consumer: durable for a
// group, ephemeral for a broadcast listener.
type jsSub struct {
	c         *Conn
	cfg       jetstream.ConsumerConfig // to make the consumer again if it vanishes
	cons      jetstream.Consumer       // replaced only by the fetch goroutine
	name      string
	ephemeral bool
	spec      driver.SubscribeSpec
	pull      int // messages the client pulls ahead (nats.go's buffer)

	ch        chan driver.Delivery
	ctx       context.Context // cancelled by Close: stops fetching
	cancel    context.CancelFunc
	fetchDone chan struct{}

	mu          sync.Mutex
	inflight    map[jetstream.Msg]time.Time // → last sign of life sent
	stopKeep    chan struct{}
	keepDone    chan struct{}
	stopOnce    sync.Once
	keepOnce    sync.Once
	releaseOnce sync.Once
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
	s := &jsSub{c: c, spec: spec}
	var (
		cons jetstream.Consumer
		err  error
	)
	if spec.Group == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Name = "gossip_bcast_" + hex.EncodeToString(b[:])
		cfg.Description = "gossip broadcast listener on " + filter
		cfg.InactiveThreshold = c.cfg.inactiveThreshold
		cons, err = c.js.CreateConsumer(ctx, c.cfg.stream, cfg)
		s.ephemeral = true
	} else {
		cfg.Durable = consumerName(spec.Group, spec.Pattern)
		cfg.Description = "gossip group " + spec.Group + " on " + filter
		if spec.Start == driver.StartOldest {
			cfg.DeliverPolicy = jetstream.DeliverAllPolicy
		}
		cons, err = c.durable(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("nats: consumer on %s: %w", filter, err)
	}
	s.cons, s.cfg = cons, cfg
	s.name = cons.CachedInfo().Name
	// BufferSize is shared between nats.go's pull buffer and the Deliveries
	// channel, so that at most BufferSize + Workers are unsettled.
	s.pull = max(1, spec.BufferSize/2)
	s.ch = make(chan driver.Delivery, max(1, spec.BufferSize-s.pull))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.fetchDone = make(chan struct{})
	s.inflight = map[jetstream.Msg]time.Time{}
	s.stopKeep = make(chan struct{})
	s.keepDone = make(chan struct{})
	go s.fetch()
	go s.keepAlive()
	return s, nil
}

// durable returns the group's consumer, creating it on first use. A later
// member joins it as it is (its start position was fixed when it was
// created); only AckWait follows the newest member.
func (c *Conn) durable(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
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

// fetch pulls messages continuously (a new pull request whenever half of
// the pull buffer is used, so the pipe never runs dry) and hands them to
// gossip; it closes the Deliveries channel when Close stops it.
func (s *jsSub) fetch() {
	defer close(s.fetchDone)
	defer close(s.ch)
	retry := 50 * time.Millisecond
	for {
		got, err := s.consume()
		if s.ctx.Err() != nil {
			return
		}
		if got {
			retry = 50 * time.Millisecond
		}
		s.c.cfg.logger.Debug("nats: pulling failed; retrying", "consumer", s.name, "error", err)
		// Whatever ended the pull (a 409 Consumer Deleted, missed
		// heartbeats, no responders), check whether the consumer is still
		// there; recreate asks the server before it makes anything.
		s.recreate()
		t := time.NewTimer(retry)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
		retry = min(2*retry, 2*time.Second)
	}
}

// consume hands messages over until the iterator fails or Close drains
// it. Draining unsubscribes and waits for the server to confirm, handing
// over (or giving back) what arrived meanwhile: once it ends, the server
// sends this subscription nothing more. Without a server to confirm (the
// connection is down) the drain is cut short after drainTimeout, or at once.
func (s *jsSub) consume() (got bool, err error) {
	it, err := s.cons.Messages(jetstream.PullMaxMessages(s.pull),
		jetstream.PullExpiry(fetchExpiry), jetstream.PullHeartbeat(fetchHeartbeat))
	if err != nil {
		return false, err
	}
	defer it.Stop()
	nextCtx, cut := context.WithCancel(context.Background())
	defer cut()
	stop := context.AfterFunc(s.ctx, func() {
		if !s.c.nc.IsConnected() {
			cut()
			return
		}
		it.Drain()
		t := time.NewTimer(drainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cut()
		case <-nextCtx.Done(): // drained
		}
	})
	defer stop()
	next := jetstream.NextContext(nextCtx)
	for {
		msg, err := it.Next(next)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) && s.ctx.Err() == nil {
				err = fmt.Errorf("pull ended: %w", err)
			}
			return got, err
		}
		got = true
		s.hand(msg)
	}
}

// recreate makes the consumer again when the server no longer has it (an
// operator deleted it, a broadcast consumer outlived its inactive threshold,
// a server lost its memory store). It starts afresh: a durable one from the
// events published from now on, or as its group's Start says.
func (s *jsSub) recreate() {
	ctx, cancel := context.WithTimeout(s.ctx, ackTimeout)
	defer cancel()
	if _, err := s.cons.Info(ctx); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return // still there (or the server is away): keep fetching
	}
	s.c.cfg.logger.Warn("nats: consumer is gone; making it again", "stream", s.c.cfg.stream, "consumer", s.name)
	s.c.streamMu.Lock()
	s.c.streamReady = false
	s.c.streamMu.Unlock()
	if err := s.c.ensureStream(ctx); err != nil {
		s.c.cfg.logger.Warn("nats: cannot make the stream again", "stream", s.c.cfg.stream, "error", err)
		return
	}
	var (
		cons jetstream.Consumer
		err  error
	)
	if s.ephemeral {
		cons, err = s.c.js.CreateConsumer(ctx, s.c.cfg.stream, s.cfg)
	} else {
		cons, err = s.c.durable(ctx, s.cfg)
	}
	if err != nil {
		s.c.cfg.logger.Warn("nats: cannot make the consumer again", "consumer", s.name, "error", err)
		return
	}
	s.cons = cons
}

// hand gives one fetched message to gossip, or, when Close came first,
// gives it back to the server at once for another member.
func (s *jsSub) hand(msg jetstream.Msg) {
	s.mu.Lock()
	s.inflight[msg] = time.Now()
	s.mu.Unlock()
	d := s.delivery(msg)
	select {
	case s.ch <- d:
		return
	default:
	}
	select {
	case s.ch <- d:
	case <-s.ctx.Done():
		s.settled(msg)
		_ = msg.Nak()
	}
}

func (s *jsSub) delivery(msg jetstream.Msg) driver.Delivery {
	m, err := decode(s.c.eventType(msg.Subject()), msg.Headers(), msg.Data())
	d := driver.Delivery{Message: m, Err: err, Attempt: 1, Token: msg}
	if md, merr := msg.Metadata(); merr == nil {
		d.Attempt = int(md.NumDelivered)
	}
	return d
}

// settled forgets a message that was acked or nacked.
func (s *jsSub) settled(msg jetstream.Msg) {
	s.mu.Lock()
	delete(s.inflight, msg)
	s.mu.Unlock()
}

// keepAlive tells the server that deliveries held longer than half the
// ack wait are still being worked on, so they are not handed to another
// member. It runs until the Conn closes, or the subscription closed and
// everything it delivered was settled.
func (s *jsSub) keepAlive() {
	defer close(s.keepDone)
	every := max(s.spec.AckWait/4, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopKeep:
			return
		case <-t.C:
		}
		now := time.Now()
		var due []jetstream.Msg
		s.mu.Lock()
		for msg, last := range s.inflight {
			if now.Sub(last) >= s.spec.AckWait/2 {
				due = append(due, msg)
				s.inflight[msg] = now
			}
		}
		empty := len(s.inflight) == 0
		s.mu.Unlock()
		for _, msg := range due {
			_ = msg.InProgress()
		}
		if empty && s.ctx.Err() != nil {
			select {
			case <-s.fetchDone:
				s.release(context.Background())
				return
			default:
			}
		}
	}
}

// release deletes a broadcast listener's consumer and forgets the
// subscription, once nothing it delivered is outstanding.
func (s *jsSub) release(ctx context.Context) {
	s.releaseOnce.Do(func() {
		s.c.forget(s)
		if s.ephemeral && !s.c.nc.IsClosed() {
			ctx, cancel := context.WithTimeout(ctx, ackTimeout)
			defer cancel()
			_ = s.c.js.DeleteConsumer(ctx, s.c.cfg.stream, s.name)
		}
	})
}

// Ack acknowledges the delivery. By default it sends the ack without
// waiting for a reply (Conn.Close flushes acks still buffered); with SyncAck
// it waits for the server to confirm.
func (s *jsSub) Ack(ctx context.Context, d driver.Delivery) error {
	msg, ok := d.Token.(jetstream.Msg)
	if !ok {
		return fmt.Errorf("nats: Ack of a delivery this subscription did not make")
	}
	defer s.settled(msg)
	if !s.c.cfg.syncAck {
		return msg.Ack()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ackTimeout)
		defer cancel()
	}
	return msg.DoubleAck(ctx)
}

// Nack asks the server to redeliver the delivery after delay.
func (s *jsSub) Nack(_ context.Context, d driver.Delivery, delay time.Duration) error {
	msg, ok := d.Token.(jetstream.Msg)
	if !ok {
		return fmt.Errorf("nats: Nack of a delivery this subscription did not make")
	}
	defer s.settled(msg)
	if delay <= 0 {
		return msg.Nak()
	}
	return msg.NakWithDelay(delay)
}

// Close stops fetching; messages fetched but not yet handed to gossip go
// back to the server at once. Deliveries already handed over may still be
// acked or nacked, and are kept alive, until the Conn closes.
func (s *jsSub) Close(ctx context.Context) error {
	s.stopOnce.Do(s.cancel)
	select {
	case <-s.fetchDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown is Close, then the end of the keep-alive, when the Conn closes.
func (s *jsSub) shutdown(ctx context.Context) {
	_ = s.Close(ctx)
	s.keepOnce.Do(func() { close(s.stopKeep) })
	<-s.keepDone
	select {
	case <-s.fetchDone:
		s.release(ctx)
	case <-ctx.Done():
	}
}
