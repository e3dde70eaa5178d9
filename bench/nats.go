package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var errNotApplicable = errors.New("not applicable")

// natsEnv is what the NATS implementations connect to.
type natsEnv struct {
	url string
	cpu func() time.Duration // the server process's CPU so far; nil when embedded
}

// cleanup deletes every stream the last run left.
func (e *natsEnv) cleanup() {
	nc, err := nats.Connect(e.url)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var all []string
	for n := range names.Name() {
		all = append(all, n)
	}
	for _, n := range all {
		_ = js.DeleteStream(ctx, n)
	}
}

// --- raw nats.go, core ---

type natsCorePipe struct {
	pub     *nats.Conn
	subs    []*nats.Conn
	subject string
}

func (e *natsEnv) rawCore(_ context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
	pub, err := nats.Connect(e.url)
	if err != nil {
		return nil, err
	}
	p := &natsCorePipe{pub: pub, subject: fmt.Sprintf("raw%d.bench.event", run)}
	for g := range sh.groups() {
		for range sh.members() {
			nc, err := nats.Connect(e.url)
			if err != nil {
				p.Close()
				return nil, err
			}
			p.subs = append(p.subs, nc)
			cb := func(m *nats.Msg) { recv(m.Data, -1) }
			if sh.Groups > 1 || sh.Members > 1 {
				_, err = nc.QueueSubscribe(p.subject, fmt.Sprintf("g%d", g), cb)
			} else {
				_, err = nc.Subscribe(p.subject, cb)
			}
			if err != nil {
				p.Close()
				return nil, err
			}
			if err := nc.Flush(); err != nil {
				p.Close()
				return nil, err
			}
		}
	}
	return p, nil
}

func (p *natsCorePipe) Publish(_ context.Context, batch [][]byte) error {
	for _, b := range batch {
		if err := p.pub.Publish(p.subject, b); err != nil {
			return err
		}
	}
	return nil
}

func (p *natsCorePipe) Close() error {
	p.pub.Close()
	for _, nc := range p.subs {
		nc.Close()
	}
	return nil
}

// --- raw nats.go, JetStream: PublishAsync (batches) or Publish (single
// events, each caller waiting for its own PubAck), pull Consume ---

type natsJSPipe struct {
	pubConn *nats.Conn
	js      jetstream.JetStream
	subs    []*nats.Conn
	ccs     []jetstream.ConsumeContext
	subject string
}

func (e *natsEnv) rawJetStream(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
	pub, err := nats.Connect(e.url)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(pub)
	if err != nil {
		pub.Close()
		return nil, err
	}
	p := &natsJSPipe{pubConn: pub, js: js, subject: fmt.Sprintf("raw%d.bench.event", run)}
	stream := fmt.Sprintf("RAW%d", run)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{fmt.Sprintf("raw%d.>", run)}, Storage: jetstream.FileStorage,
	}); err != nil {
		p.Close()
		return nil, err
	}
	for g := range sh.groups() {
		for range sh.members() {
			nc, err := nats.Connect(e.url)
			if err != nil {
				p.Close()
				return nil, err
			}
			p.subs = append(p.subs, nc)
			sjs, _ := jetstream.New(nc)
			cons, err := sjs.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
				Durable: fmt.Sprintf("g%d", g), AckPolicy: jetstream.AckExplicitPolicy,
				FilterSubject: p.subject, AckWait: 30 * time.Second,
			})
			if err != nil {
				p.Close()
				return nil, err
			}
			cc, err := cons.Consume(func(m jetstream.Msg) {
				recv(m.Data(), -1)
				_ = m.Ack()
			})
			if err != nil {
				p.Close()
				return nil, err
			}
			p.ccs = append(p.ccs, cc)
		}
	}
	return p, nil
}

func (p *natsJSPipe) Publish(ctx context.Context, batch [][]byte) error {
	if len(batch) == 1 {
		_, err := p.js.Publish(ctx, p.subject, batch[0])
		return err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	for _, b := range batch {
		f, err := p.js.PublishAsync(p.subject, b)
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (p *natsJSPipe) Close() error {
	for _, cc := range p.ccs {
		cc.Stop()
	}
	for _, nc := range p.subs {
		nc.Close()
	}
	p.pubConn.Close()
	return nil
}

// --- Watermill: watermill-nats v2, core (JetStream disabled) or JetStream ---

func (e *natsEnv) watermill(jetStream, typed bool) Opener {
	return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
		logger := watermill.NopLogger{}
		topic := fmt.Sprintf("wm%d", run)
		js := wmnats.JetStreamConfig{Disabled: !jetStream, AutoProvision: jetStream, AckAsync: true}
		pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
			URL: e.url, Marshaler: &wmnats.NATSMarshaler{}, JetStream: js,
		}, logger)
		if err != nil {
			return nil, err
		}
		p := &wmPipe{pub: pub, topic: topic, recv: recv, typed: typed, closers: []func() error{pub.Close}}
		subCtx, cancel := context.WithCancel(context.Background())
		p.cancel = cancel
		for g := range sh.groups() {
			for range sh.members() {
				queue := ""
				if jetStream || sh.Groups > 1 || sh.Members > 1 {
					queue = fmt.Sprintf("g%d", g)
				}
				sjs := js
				if jetStream {
					sjs.DurablePrefix = queue
					sjs.SubscribeOptions = []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()}
				}
				sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
					URL: e.url, QueueGroupPrefix: queue, SubscribersCount: 1,
					AckWaitTimeout: 30 * time.Second, CloseTimeout: 5 * time.Second,
					Unmarshaler: &wmnats.NATSMarshaler{}, JetStream: sjs,
				}, logger)
				if err != nil {
					p.Close()
					return nil, err
				}
				p.closers = append(p.closers, sub.Close)
				msgs, err := sub.Subscribe(subCtx, topic)
				if err != nil {
					p.Close()
					return nil, err
				}
				p.consume(msgs)
			}
		}
		return p.pipe(), nil
	}
}

// --- gossip on its NATS driver ---

func (e *natsEnv) gossip(mode string, typed bool) Opener {
	return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
		if !haveNATSDriver {
			return nil, errPending
		}
		u := fmt.Sprintf("%s?prefix=gb%d", e.url, run)
		if natsParams != "" {
			u += "&" + natsParams
		}
		useGroup := true
		if mode == "core" {
			u += "&mode=core"
			useGroup = false
		}
		return openGossip(ctx, u, sh, useGroup, typed, recv)
	}
}

// natsParams and redisParams are extra URL query parameters for the gossip
// drivers (-nats-params, -redis-params), to try settings; the table is made
// with none.
var natsParams, redisParams string

var errPending = errors.New("pending: the driver is not in yet")
