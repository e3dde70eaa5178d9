package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
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
					recv(b)
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

// gossipPipe publishes and subscribes through a gossip EventBus.
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
// services would, except in process where one bus does both. group is
// whether a single subscriber joins a group (durable transports) or
// listens (memory, NATS core, Redis Pub/Sub).
func openGossip(ctx context.Context, driverURL string, sh Shape, useGroup bool, recv Receiver) (*gossipPipe, error) {
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
			recv(d)
		case []byte:
			recv(d)
		default:
			return fmt.Errorf("unexpected payload %T", e.Data)
		}
		return nil
	}
	inProcess := pub.Transport() == "memory"
	for g := range sh.groups() {
		for range sh.members() {
			bus := pub
			if !inProcess {
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
	return p, nil
}

func (p *gossipPipe) Publish(ctx context.Context, batch [][]byte) error {
	events := make([]*gossip.Event, len(batch))
	for i, b := range batch {
		events[i] = gossip.NewEvent(benchType, json.RawMessage(b))
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

func gossipMemory(ctx context.Context, _ int, sh Shape, recv Receiver) (Pipe, error) {
	return openGossip(ctx, "memory", sh, false, recv)
}

// watermillGoChannel is Watermill's in-process pub/sub. It has no consumer
// groups: every subscriber gets every message.
func watermillGoChannel(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
	if sh.members() > 1 {
		return nil, errNotApplicable
	}
	gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: memBuffer}, watermill.NopLogger{})
	topic := fmt.Sprintf("bench_%d", run)
	p := &wmPipe{pub: gc, topic: topic, recv: recv, closers: []func() error{gc.Close}}
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
	return p, nil
}

// wmPipe publishes with a Watermill Publisher and consumes Watermill
// subscription channels.
type wmPipe struct {
	pub     message.Publisher
	topic   string
	recv    Receiver
	cancel  context.CancelFunc
	closers []func() error
	wg      sync.WaitGroup
}

func (p *wmPipe) consume(msgs <-chan *message.Message) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for m := range msgs {
			p.recv(m.Payload)
			m.Ack()
		}
	}()
}

func (p *wmPipe) Publish(_ context.Context, batch [][]byte) error {
	msgs := make([]*message.Message, len(batch))
	for i, b := range batch {
		msgs[i] = message.NewMessage(watermill.NewUUID(), b)
	}
	return p.pub.Publish(p.topic, msgs...)
}

func (p *wmPipe) Close() error {
	p.cancel()
	var first error
	for _, c := range p.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	p.wg.Wait()
	return first
}
