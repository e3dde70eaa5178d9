package tracing_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	_ "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
)

func TestOneTraceAcrossServicesOnRedis(t *testing.T) {
	base := redisURL(t)
	prefix := "gossip-tracing-" + gossip.NewID()
	t.Cleanup(func() { deleteKeys(t, base, prefix) }) // after the buses
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("prefix", prefix)
	u.RawQuery = q.Encode()
	chain(t, "redis", func(t *testing.T, service string) *gossip.EventBus {
		return newBus(t, u.String(), service) // a connection per service
	})
}

// redisURL is a real Redis for the test: GOSSIP_REDIS_URL, else
// 127.0.0.1:6379 if it answers, else a redis-server from PATH started for
// the test. Without any, the test is skipped (and fails when CI=true).
func redisURL(t *testing.T) string {
	if u := os.Getenv("GOSSIP_REDIS_URL"); u != "" {
		return u
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second); err == nil {
		c.Close()
		return "redis://127.0.0.1:6379/0"
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Redis: set GOSSIP_REDIS_URL, run one on 127.0.0.1:6379, or put redis-server on PATH")
		}
		t.Skip("NO REDIS: GOSSIP_REDIS_URL is unset, nothing answers on 127.0.0.1:6379, redis-server is not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond) // a server starting: dial until it listens
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case <-deadline.C:
			t.Fatalf("redis-server on %s did not start within %v", addr, waitLimit)
		case <-tick.C:
		}
	}
	return "redis://" + addr + "/0"
}

// deleteKeys removes what the test left under prefix.
func deleteKeys(t *testing.T, rawURL, prefix string) {
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		t.Logf("clean up %s: %v", prefix, err)
		return
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+":*", 100).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Logf("clean up %s: %v", prefix, err)
	}
}
