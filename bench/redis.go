package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/redis/go-redis/v9"
)

func init() { redis.SetLogger(quietLogger{}) }

// quietLogger drops go-redis's internal log lines (pool notices when a run
// closes its clients).
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// redisEnv is what the Redis implementations connect to.
type redisEnv struct {
	srv *redisServer
}

func (e *redisEnv) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: e.srv.Addr})
}

// cleanup drops everything the last run left.
func (e *redisEnv) cleanup() {
	c := e.client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.FlushAll(ctx).Err()
}

// --- raw go-redis, Streams: XADD (pipelined for batches), XREADGROUP
// COUNT 100, XACK per read ---

type redisStreamPipe struct {
	pub    *redis.Client
	subs   []*redis.Client
	key    string
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (e *redisEnv) rawStreams(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
	p := &redisStreamPipe{pub: e.client(), key: fmt.Sprintf("raw%d", run)}
	readCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for g := range sh.groups() {
		group := fmt.Sprintf("g%d", g)
		if err := p.pub.XGroupCreateMkStream(ctx, p.key, group, "$").Err(); err != nil {
			p.Close()
			return nil, err
		}
		for m := range sh.members() {
			c := e.client()
			p.subs = append(p.subs, c)
			consumer := fmt.Sprintf("c%d", m)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				for readCtx.Err() == nil {
					res, err := c.XReadGroup(readCtx, &redis.XReadGroupArgs{
						Group: group, Consumer: consumer, Streams: []string{p.key, ">"},
						Count: 100, Block: 100 * time.Millisecond,
					}).Result()
					if err != nil {
						if errors.Is(err, redis.Nil) {
							continue
						}
						if readCtx.Err() == nil {
							time.Sleep(10 * time.Millisecond)
						}
						continue
					}
					for _, s := range res {
						ids := make([]string, len(s.Messages))
						for i, m := range s.Messages {
							d, _ := m.Values["d"].(string)
							recv([]byte(d), -1)
							ids[i] = m.ID
						}
						if len(ids) > 0 {
							_ = c.XAck(readCtx, p.key, group, ids...).Err()
						}
					}
				}
			}()
		}
	}
	return p, nil
}

func (p *redisStreamPipe) Publish(ctx context.Context, batch [][]byte) error {
	if len(batch) == 1 {
		return p.pub.XAdd(ctx, &redis.XAddArgs{Stream: p.key, Values: []any{"d", batch[0]}}).Err()
	}
	pipe := p.pub.Pipeline()
	for _, b := range batch {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: p.key, Values: []any{"d", b}})
	}
	_, err := pipe.Exec(ctx)
	return err
}

func (p *redisStreamPipe) Close() error {
	p.cancel()
	p.wg.Wait()
	for _, c := range p.subs {
		_ = c.Close()
	}
	return p.pub.Close()
}

// --- raw go-redis, Pub/Sub: PUBLISH one per round trip, SUBSCRIBE ---

type redisPubSubPipe struct {
	pub     *redis.Client
	sub     *redis.Client
	ps      *redis.PubSub
	channel string
	wg      sync.WaitGroup
}

func (e *redisEnv) rawPubSub(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
	if sh.groups() > 1 || sh.members() > 1 {
		return nil, errNotApplicable
	}
	p := &redisPubSubPipe{pub: e.client(), sub: e.client(), channel: fmt.Sprintf("raw%d.bench.event", run)}
	p.ps = p.sub.Subscribe(ctx, p.channel)
	if _, err := p.ps.Receive(ctx); err != nil { // the subscription confirmation
		p.Close()
		return nil, err
	}
	ch := p.ps.Channel(redis.WithChannelSize(memBuffer))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for m := range ch {
			recv([]byte(m.Payload), -1)
		}
	}()
	return p, nil
}

func (p *redisPubSubPipe) Publish(ctx context.Context, batch [][]byte) error {
	for _, b := range batch {
		if err := p.pub.Publish(ctx, p.channel, b).Err(); err != nil {
			return err
		}
	}
	return nil
}

func (p *redisPubSubPipe) Close() error {
	if p.ps != nil {
		_ = p.ps.Close()
	}
	p.wg.Wait()
	_ = p.sub.Close()
	return p.pub.Close()
}

// --- Watermill: watermill-redisstream ---

func (e *redisEnv) watermill(typed bool) Opener {
	return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
		return e.openWatermill(ctx, run, sh, typed, recv)
	}
}

func (e *redisEnv) openWatermill(ctx context.Context, run int, sh Shape, typed bool, recv Receiver) (Pipe, error) {
	logger := watermill.NopLogger{}
	pc := e.client()
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: pc}, logger)
	if err != nil {
		pc.Close()
		return nil, err
	}
	p := &wmPipe{pub: pub, topic: fmt.Sprintf("wm%d", run), recv: recv, typed: typed, closers: []func() error{pub.Close, quietClose(pc)}}
	subCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for g := range sh.groups() {
		for m := range sh.members() {
			sc := e.client()
			sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
				Client: sc, ConsumerGroup: fmt.Sprintf("g%d", g), Consumer: fmt.Sprintf("c%d", m),
				OldestId: "0",
			}, logger)
			if err != nil {
				sc.Close()
				p.Close()
				return nil, err
			}
			p.closers = append(p.closers, sub.Close, quietClose(sc))
			msgs, err := sub.Subscribe(subCtx, p.topic)
			if err != nil {
				p.Close()
				return nil, err
			}
			p.consume(msgs)
		}
	}
	return p.pipe(), nil
}

// --- gossip on its Redis driver ---

func (e *redisEnv) gossip(mode string, typed bool) Opener {
	return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
		if !haveRedisDriver {
			return nil, errPending
		}
		// maxlen=-1: keep every entry, as the raw XADD and Watermill do
		// (the run's keys are dropped afterwards).
		u := fmt.Sprintf("%s?prefix=gb%d&maxlen=-1", e.srv.URL, run)
		if redisParams != "" {
			u += "&" + redisParams
		}
		useGroup := true
		if mode == "pubsub" {
			u += "&mode=pubsub"
			useGroup = false
		}
		return openGossip(ctx, u, sh, useGroup, typed, recv)
	}
}

// quietClose closes a client Watermill may already have closed.
func quietClose(c *redis.Client) func() error {
	return func() error { _ = c.Close(); return nil }
}
