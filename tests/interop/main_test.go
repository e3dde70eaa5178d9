// Package interop_test proves that gossip and the official CloudEvents Go
// SDK (github.com/cloudevents/sdk-go/v2, its core event package) read each
// other's events on every transport mode: NATS JetStream and core, Redis
// Streams and Pub/Sub.
//
// The SDK's NATS protocol bindings are not served by the module proxy, so
// the messages are built from the CloudEvents spec and the SDK's event.Event
// the way those bindings write and read them: binary mode as ce-<attribute>
// headers (the JetStream binding writes the content type as
// ce-datacontenttype), structured mode as the SDK's JSON format in the body
// with or without a content-type header (the plain NATS binding sends no
// header). Redis has no SDK binding; its entries and payloads follow
// docs/drivers/redis.md.
package interop_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/drivers/nats/natsserver"
)

// natsSrv is an embedded JetStream server of the test run's own.
var natsSrv *natsserver.Server

func TestMain(m *testing.M) {
	srv, err := natsserver.Start(natsserver.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start embedded nats-server:", err)
		os.Exit(1)
	}
	natsSrv = srv
	code := m.Run()
	srv.Shutdown()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitLimit bounds every wait for a message.
const waitLimit = 10 * time.Second

// redisURL is GOSSIP_REDIS_URL, else 127.0.0.1:6379 when it answers. Without
// one the test is skipped, and fails when CI=true.
func redisURL(t *testing.T) string {
	if u := os.Getenv("GOSSIP_REDIS_URL"); u != "" {
		return u
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second); err == nil {
		_ = c.Close()
		return "redis://127.0.0.1:6379/0"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Redis: set GOSSIP_REDIS_URL or run one on 127.0.0.1:6379")
	}
	t.Skip("no Redis: GOSSIP_REDIS_URL is unset and nothing answers on 127.0.0.1:6379")
	return ""
}

// redisClient is a plain go-redis client on url whose keys under prefix
// are deleted, and which is closed, when the test ends.
func redisClient(t *testing.T, url, prefix string) *goredis.Client {
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("GOSSIP_REDIS_URL: %v", err)
	}
	rc := goredis.NewClient(o)
	t.Cleanup(func() {
		defer rc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var cursor uint64
		for range 1000 { // bounded: a test writes a few keys
			keys, next, err := rc.Scan(ctx, cursor, prefix+":*", 500).Result()
			if err != nil {
				return
			}
			if len(keys) > 0 {
				rc.Del(ctx, keys...)
			}
			if cursor = next; cursor == 0 {
				return
			}
		}
	})
	return rc
}

// name is a prefix of the test's own: its name's letters and digits, and a
// random suffix.
func name(t *testing.T) string {
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, t.Name())
	if len(n) > 30 {
		n = n[len(n)-30:]
	}
	return fmt.Sprintf("interop%s%x", n, time.Now().UnixNano()&0xffffff)
}
