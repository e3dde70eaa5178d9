package redis

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

// benchConn opens a connection in mode on the Redis of GOSSIP_REDIS_URL
// (default 127.0.0.1:6379) under a prefix of its own, whose keys are
// deleted when the benchmark ends. It skips when no Redis answers.
func benchConn(b *testing.B, mode Mode) *conn {
	b.Helper()
	u := os.Getenv("GOSSIP_REDIS_URL")
	if u == "" {
		u = DefaultURL
	}
	o, err := goredis.ParseURL(u)
	if err != nil {
		b.Fatal(err)
	}
	client := goredis.NewClient(o)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		b.Skipf("no Redis at %s: %v", u, err)
	}
	prefix := fmt.Sprintf("gb_%x", rand.Uint32())
	dc, err := New(client, Prefix(prefix), WithMode(mode), Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := client.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = client.Del(ctx, keys...).Err()
		}
		_ = dc.Close(ctx)
		_ = client.Close()
	})
	return dc.(*conn)
}

// benchBatch returns n copies of benchMessage with IDs of their own.
func benchBatch(n int) []*driver.Message {
	msgs := make([]*driver.Message, n)
	for i := range msgs {
		msgs[i] = benchMessage()
		msgs[i].ID = msgs[i].ID[:len(msgs[i].ID)-4] + fmt.Sprintf("%04x", i)
	}
	return msgs
}

// BenchmarkPublish measures Conn.Publish against a real Redis, one event
// per call and batches of 100 (one op is one call).
func BenchmarkPublish(b *testing.B) {
	for _, mode := range []Mode{Streams, PubSub} {
		for _, n := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", modeName(mode), n), func(b *testing.B) {
				c := benchConn(b, mode)
				msgs := benchBatch(n)
				ctx := context.Background()
				b.ReportAllocs()
				start := cpuTime()
				for b.Loop() {
					if err := c.Publish(ctx, msgs); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpuTime()-start)
			})
		}
	}
}

// BenchmarkDelivery measures the delivery path against a real Redis, per
// read of 100 entries: the read, the entries turned into Deliveries, and
// (for a group) their Ack in one call. The entries are published with the
// timer stopped.
func BenchmarkDelivery(b *testing.B) {
	const n = 100
	ctx := context.Background()
	b.Run("streams/listener", func(b *testing.B) {
		c := benchConn(b, Streams)
		msgs := benchBatch(n)
		if err := c.Publish(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		s, rc := benchStreamSub(b, c, "", n)
		var buf readState
		st := &stream{typ: msgs[0].Type, key: c.streamKey(msgs[0].Type)}
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			st.lastID = "0" // the same 100 entries every time
			res, err := s.fetch(rc, []*stream{st}, &buf)
			if err != nil {
				b.Fatal(err)
			}
			if !s.sendRead(res) || len(s.ch) != n {
				b.Fatalf("%d deliveries", len(s.ch))
			}
			drain(b, s.ch)
		}
		reportCPU(b, cpuTime()-start)
	})
	b.Run("streams/group_ack", func(b *testing.B) {
		c := benchConn(b, Streams)
		msgs := benchBatch(n)
		s, rc := benchStreamSub(b, c, "bench", n)
		var buf readState
		st := &stream{typ: msgs[0].Type, key: c.streamKey(msgs[0].Type)}
		if _, err := s.position(ctx, []*stream{st}, "$"); err != nil {
			b.Fatal(err)
		}
		g := groupSub{s}
		c.opts.syncAck = true // the XACK sent and answered within the op
		ds := make([]driver.Delivery, 0, n)
		var spent time.Duration
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			if err := c.Publish(ctx, msgs); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := cpuTime()
			res, err := s.fetch(rc, []*stream{st}, &buf)
			if err != nil {
				b.Fatal(err)
			}
			if !s.sendRead(res) || len(s.ch) != n {
				b.Fatalf("%d deliveries", len(s.ch))
			}
			ds = ds[:0]
			for range n {
				ds = append(ds, <-s.ch)
			}
			if err := g.Ack(ctx, ds); err != nil {
				b.Fatal(err)
			}
			spent += cpuTime() - start
		}
		reportCPU(b, spent)
	})
	b.Run("pubsub", func(b *testing.B) {
		c := benchConn(b, PubSub)
		msgs := benchBatch(n)
		sub, err := c.Subscribe(ctx, driver.SubscribeSpec{Pattern: msgs[0].Type, BufferSize: n})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = sub.Close(ctx) }()
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			// Published with the timer running: Pub/Sub keeps nothing to
			// read later. Subtract BenchmarkPublish/pubsub/batch=100.
			if err := c.Publish(ctx, msgs); err != nil {
				b.Fatal(err)
			}
			for range n {
				if d := <-sub.Deliveries(); d.Err != nil {
					b.Fatal(d.Err)
				}
			}
		}
		reportCPU(b, cpuTime()-start)
	})
}

// benchStreamSub is a Streams subscription with no goroutines, for a
// benchmark to call fetch and sendRead itself, and the client of its reads:
// a reader's own, as read makes it.
func benchStreamSub(b *testing.B, c *conn, group string, buffer int) (*streamSub, *goredis.Client) {
	s := &streamSub{c: c, group: group, consumer: "bench", ch: make(chan driver.Delivery, buffer), startID: "0"}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	rc := s.readerClient(&reader{}, c.client.(*goredis.Client))
	b.Cleanup(func() { _ = rc.Close() })
	return s, rc
}

func drain(b *testing.B, ch chan driver.Delivery) {
	for len(ch) > 0 {
		if d := <-ch; d.Err != nil {
			b.Fatal(d.Err)
		}
	}
}

func modeName(m Mode) string {
	if m == PubSub {
		return "pubsub"
	}
	return "streams"
}

// cpuTime is the CPU time (user and system) the process has used: every
// goroutine's, go-redis's readers and the garbage collector's too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time spent over b.N ops as cpu-ns/op: on a
// machine shared with other work, steadier than sec/op, and what a client
// pays per event on a machine it shares with the server.
func reportCPU(b *testing.B, spent time.Duration) {
	b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkAck measures a group member's Ack of one event per call, as a
// subscription handling one event at a time makes them, with ack=sync (a
// round trip per call) and the default ack=async (queued, one XACK per
// millisecond). cpu-ns/op counts the process's CPU: the timer's flushes
// too. The IDs need not be pending: XACK does the same work either way.
func BenchmarkAck(b *testing.B) {
	for _, mode := range []string{"sync", "async"} {
		b.Run(mode, func(b *testing.B) {
			c := benchConn(b, Streams)
			c.opts.syncAck = mode == "sync"
			s, _ := benchStreamSub(b, c, "bench", 1)
			st := &stream{typ: "bench.acked", key: c.streamKey("bench.acked")}
			ctx := context.Background()
			if _, err := s.position(ctx, []*stream{st}, "$"); err != nil {
				b.Fatal(err)
			}
			g := groupSub{s}
			tokens := make([]entry, 1<<16)
			for i := range tokens {
				tokens[i] = entry{st: st, id: fmt.Sprintf("1-%d", i)}
			}
			ds := make([]driver.Delivery, 1)
			b.ReportAllocs()
			start := cpuTime()
			i := 0
			for b.Loop() {
				ds[0] = driver.Delivery{Token: &tokens[i%len(tokens)]}
				i++
				if err := g.Ack(ctx, ds); err != nil {
					b.Fatal(err)
				}
			}
			if err := g.closeAcks(ctx); err != nil { // what is still queued
				b.Fatal(err)
			}
			reportCPU(b, cpuTime()-start)
		})
	}
}
