package middleware_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"

	_ "github.com/gossipbus/gossip/drivers/nats"
	_ "github.com/gossipbus/gossip/drivers/redis"
)

// BenchmarkIdempotent is the middleware's cost per event on each store: one
// new event per iteration (Claim, then Complete), against the same handler
// without the middleware. Redis and NATS are the servers of
// GOSSIP_REDIS_URL and GOSSIP_NATS_URL (else 127.0.0.1 on their ports);
// they are skipped when nothing answers.
func BenchmarkIdempotent(b *testing.B) {
	handler := func(ctx context.Context, e *gossip.Event) error { return nil }
	b.Run("none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := handler(context.Background(), gossip.NewEvent("bench.idem", nil)); err != nil {
				b.Fatal(err)
			}
		}
	})
	ns := fmt.Sprintf("bench_idem_%x", rand.Uint32())
	for _, store := range []struct{ name, url, addr string }{
		{"memory", "memory://" + ns, ""},
		{"redis", envOr("GOSSIP_REDIS_URL", "redis://127.0.0.1:6379/0") + "?prefix=" + ns, "127.0.0.1:6379"},
		{"nats", envOr("GOSSIP_NATS_URL", "nats://127.0.0.1:4222") + "?prefix=" + ns, "127.0.0.1:4222"},
	} {
		b.Run(store.name, func(b *testing.B) {
			if store.addr != "" && !strings.Contains(store.url, "://"+store.addr) {
				store.addr = "" // an URL from the environment: let Open say whether it answers
			}
			if store.addr != "" {
				if c, err := net.DialTimeout("tcp", store.addr, time.Second); err != nil {
					b.Skipf("no server on %s", store.addr)
				} else {
					_ = c.Close()
				}
			}
			bus, err := gossip.NewEventBus(&gossip.Config{Driver: store.url})
			if err != nil {
				b.Skipf("no %s: %v", store.name, err)
			}
			defer bus.Shutdown(context.Background())
			claims, err := bus.Claims(context.Background(), "bench", time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			h := middleware.Idempotent(claims, middleware.IdempotencyOptions{})(handler)
			b.ReportAllocs()
			for b.Loop() {
				if err := h(context.Background(), gossip.NewEvent("bench.idem", nil)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if store.name == "nats" {
				deleteBucket(b, envOr("GOSSIP_NATS_URL", "nats://127.0.0.1:4222"), ns+"_claims_bench")
			}
		})
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// deleteBucket deletes the claim store's KV bucket the benchmark made.
func deleteBucket(b *testing.B, url, bucket string) {
	nc, err := natsgo.Connect(url)
	if err != nil {
		b.Logf("delete bucket %s: %v", bucket, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err == nil {
		err = js.DeleteKeyValue(context.Background(), bucket)
	}
	if err != nil {
		b.Logf("delete bucket %s: %v", bucket, err)
	}
}
