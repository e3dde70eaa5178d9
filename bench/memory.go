package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/gossipbus/gossip/gossip"
)

// memBuffer is the per-subscriber buffer of every in-process
// implementation: gossip's default Config.BufferSize.
const memBuffer = 1000

// rawChannel is the ceiling in process: a buffered Go channel per group,
// read by one goroutine per member.
func rawChannel(_ context.Context, _ int, sh Shape, recv Receiver) (Pipe, error) {
	p := &chanPipe{}
	for range sh.groups() {
		ch := make(chan []byte, memBuffer)
		p.chans = append(p.chans, ch)
		for range sh.members() {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				for b := range ch {
					recv(b, -1)
				}
			}()
		}
	}
	return p, nil
}

type chanPipe struct {
	chans []chan []byte
	wg    sync.WaitGroup
}

func (p *chanPipe) Publish(ctx context.Context, batch [][]byte) error {
	for _, b := range batch {
		for _, ch := range p.chans {
			select {
			case ch <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

func (p *chanPipe) Close() error {
	for _, ch := range p.chans {
		close(ch)
	}
	p.wg.Wait()
	return nil
}

// gossipPipe publishes and subscribes through gossip EventBuses.
type gossipPipe struct {
	pub  *gossip.EventBus
	subs []*gossip.EventBus // buses the subscribers run on (pub included)
	drop func()             // removes what the run left on the server
}

const benchType gossip.EventType = "bench.event"

// gossipWorkers is Config.Workers for every gossip bus (-gossip-workers);
// 0 is the library's default.
var gossipWorkers int

// openGossip opens one bus to publish and one per subscriber, as separate
// services would; the raw-bytes rows' in-process runs use one bus for
// both, the typed rows a named memory broker between separate buses.
// useGroup is whether a single subscriber joins a group (durable
// transports) or listens (memory, NATS core, Redis Pub/Sub). typed
// subscribes with gossip.Typed[Payload]; the pipe then publishes Payload
// values, and raw JSON otherwise.
func openGossip(ctx context.Context, driverURL string, sh Shape, useGroup, typed bool, recv Receiver) (Pipe, error) {
	newBus := func() (*gossip.EventBus, error) {
		return gossip.NewEventBus(&gossip.Config{Driver: driverURL, Source: "bench", Workers: gossipWorkers})
	}
	pub, err := newBus()
	if err != nil {
		return nil, err
	}
	p := &gossipPipe{pub: pub}
	handler := func(_ context.Context, e *gossip.Event) error {
		switch d := e.Data.(type) {
		case json.RawMessage:
			recv(d, -1)
		case []byte:
			recv(d, -1)
		default:
			return fmt.Errorf("unexpected payload %T", e.Data)
		}
		return nil
	}
	if typed {
		handler = gossip.Typed(func(_ context.Context, _ *gossip.Event, v Payload) error {
			recv(nil, v.Seq)
			return nil
		})
	}
	oneBus := pub.Transport() == "memory" && !typed
	for g := range sh.groups() {
		for range sh.members() {
			bus := pub
			if !oneBus {
				if bus, err = newBus(); err != nil {
					p.Close()
					return nil, err
				}
			}
			p.subs = append(p.subs, bus)
			var opts []gossip.SubscribeOption
			if useGroup || sh.Groups > 1 || sh.Members > 1 {
				opts = append(opts, gossip.Group(fmt.Sprintf("g%d", g)))
			}
			if _, err := bus.Subscribe(benchType, handler, opts...); err != nil {
				p.Close()
				return nil, err
			}
		}
	}
	if typed {
		return gossipValuePipe{p}, nil
	}
	return p, nil
}

// Publish publishes raw JSON, one event per payload.
func (p *gossipPipe) Publish(ctx context.Context, batch [][]byte) error {
	if len(batch) == 1 {
		return p.pub.Publish(ctx, gossip.NewEvent(benchType, json.RawMessage(batch[0])))
	}
	events := make([]*gossip.Event, len(batch))
	for i, b := range batch {
		events[i] = gossip.NewEvent(benchType, json.RawMessage(b))
	}
	return p.pub.Publish(ctx, events...)
}

// gossipValuePipe publishes Payload values: gossip.NewEvent(type, value).
type gossipValuePipe struct{ *gossipPipe }

func (p gossipValuePipe) PublishValues(ctx context.Context, batch []Payload) error {
	if len(batch) == 1 {
		return p.pub.Publish(ctx, gossip.NewEvent(benchType, batch[0]))
	}
	events := make([]*gossip.Event, len(batch))
	for i, v := range batch {
		events[i] = gossip.NewEvent(benchType, v)
	}
	return p.pub.Publish(ctx, events...)
}

func (p *gossipPipe) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var first error
	seen := map[*gossip.EventBus]bool{}
	for _, b := range append([]*gossip.EventBus{p.pub}, p.subs...) {
		if seen[b] {
			continue
		}
		seen[b] = true
		if err := b.Shutdown(ctx); err != nil && first == nil {
			first = err
		}
	}
	if p.drop != nil {
		p.drop()
	}
	return first
}

// gossipMemory is gossip in process: one bus ("memory") for the raw-bytes
// rows; for the typed rows a publisher bus and subscriber buses on one
// named broker, as separate services in one process would be.
func gossipMemory(typed bool) Opener {
	return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
		u := "memory"
		if typed {
			u = fmt.Sprintf("memory://bench%d", run)
		}
		return openGossip(ctx, u, sh, false, typed, recv)
	}
}

// watermillGoChannel is Watermill's in-process pub/sub. It has no consumer
// groups: every subscriber gets every message.
func watermillGoChannel(typed bool) Opener {
	return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
		return openGoChannel(run, sh, typed, recv)
	}
}

func openGoChannel(run int, sh Shape, typed bool, recv Receiver) (Pipe, error) {
	if sh.members() > 1 {
		return nil, errNotApplicable
	}
	gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: memBuffer}, watermill.NopLogger{})
	topic := fmt.Sprintf("bench_%d", run)
	p := &wmPipe{pub: gc, topic: topic, recv: recv, typed: typed, closers: []func() error{gc.Close}}
	subCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for range sh.groups() {
		msgs, err := gc.Subscribe(subCtx, topic)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.consume(msgs)
	}
	return p.pipe(), nil
}

// wmPipe publishes with a Watermill Publisher and consumes Watermill
// subscription channels. typed: it publishes Payload values marshalled
// with encoding/json and unmarshals each message into a Payload, as a
// Watermill user with a struct would (Watermill's payloads are []byte).
// quietWait bounds how long Close waits for Watermill's subscribers to
// receive nothing more.
const quietWait = 5 * time.Second

type wmPipe struct {
	pub     message.Publisher
	topic   string
	recv    Receiver
	typed   bool
	cancel  context.CancelFunc
	closers []func() error
	wg      sync.WaitGroup
	last    atomic.Int64 // when the consumers last received a message (unix ns)
	running atomic.Int32 // consumers whose channel is open
}

// pipe is p as the harness should drive it: values when typed.
func (p *wmPipe) pipe() Pipe {
	if p.typed {
		return wmValuePipe{p}
	}
	return p
}

func (p *wmPipe) consume(msgs <-chan *message.Message) {
	p.wg.Add(1)
	p.running.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.running.Add(-1)
		for m := range msgs {
			p.last.Store(time.Now().UnixNano())
			if p.typed {
				var v Payload
				if err := json.Unmarshal(m.Payload, &v); err != nil {
					log.Printf("watermill: %v", err)
				}
				p.recv(nil, v.Seq)
			} else {
				p.recv(m.Payload, -1)
			}
			m.Ack()
		}
	}()
}

func (p *wmPipe) Publish(_ context.Context, batch [][]byte) error {
	if len(batch) == 1 {
		return p.pub.Publish(p.topic, message.NewMessage(watermill.NewUUID(), batch[0]))
	}
	msgs := make([]*message.Message, len(batch))
	for i, b := range batch {
		msgs[i] = message.NewMessage(watermill.NewUUID(), b)
	}
	return p.pub.Publish(p.topic, msgs...)
}

// wmValuePipe is a typed wmPipe.
type wmValuePipe struct{ *wmPipe }

func (p wmValuePipe) PublishValues(_ context.Context, batch []Payload) error {
	if len(batch) == 1 {
		b, err := json.Marshal(batch[0])
		if err != nil {
			return err
		}
		return p.pub.Publish(p.topic, message.NewMessage(watermill.NewUUID(), b))
	}
	msgs := make([]*message.Message, len(batch))
	for i, v := range batch {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		msgs[i] = message.NewMessage(watermill.NewUUID(), b)
	}
	return p.pub.Publish(p.topic, msgs...)
}

// Close waits for the subscribers to go quiet (at most quietWait) before it
// closes them: watermill-nats v2.1.3 may close a subscription's output
// channel while its NATS callback is about to send a message on it, which
// panics ("send on closed channel": it crashed whole bench runs after a
// capped run, whose backlog was still arriving). The measured window has
// ended by then.
func (p *wmPipe) Close() error {
	first := p.closers[0]() // the publisher: nothing new
	quiet := time.NewTicker(20 * time.Millisecond)
	for deadline := time.Now().Add(quietWait); time.Now().Before(deadline); <-quiet.C {
		if p.running.Load() == 0 || time.Since(time.Unix(0, p.last.Load())) > 200*time.Millisecond {
			break
		}
	}
	quiet.Stop()
	for _, c := range p.closers[1:] {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	p.cancel()
	p.wg.Wait()
	return first
}
