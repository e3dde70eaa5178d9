package redis_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	_ "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip/drivertest"
)

func TestConformanceStreams(t *testing.T) {
	requireRedis(t)
	h := harness(testURL, drivertest.Capabilities{Groups: true, Durable: true, Encodes: true, HandbackInOrder: true})
	h.PutRaw = putRaw(testURL, false)
	drivertest.Run(t, h)
}

func TestConformancePubSub(t *testing.T) {
	requireRedis(t)
	h := harness(testURL, drivertest.Capabilities{Encodes: true}, "mode", "pubsub")
	h.PutRaw = putRaw(testURL, true)
	drivertest.Run(t, h)
}

// putRaw returns a Harness.PutRaw writing body as another producer would,
// with a plain client: in Streams mode an entry of the type's stream
// ("<prefix>:{<type>}:stream") with a field set that is no CloudEvent, the
// type registered as the documented format says; in Pub/Sub mode a PUBLISH
// of the bytes on the type's channel ("<prefix>:<type>").
func putRaw(base string, pubsub bool) func(t testing.TB, ns, typ string, body []byte) {
	return func(t testing.TB, ns, typ string, body []byte) {
		t.Helper()
		c := newClient(t, base)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if pubsub {
			if err := c.Publish(ctx, ns+":"+typ, body).Err(); err != nil {
				t.Fatalf("PUBLISH raw bytes: %v", err)
			}
			return
		}
		args := &goredis.XAddArgs{Stream: ns + ":{" + typ + "}:stream", Values: []any{"producer", "elsewhere", "data", body}}
		if err := c.XAdd(ctx, args).Err(); err != nil {
			t.Fatalf("XADD raw entry: %v", err)
		}
		added, err := c.SAdd(ctx, ns+":types", typ).Result()
		if err != nil {
			t.Fatalf("register type %s: %v", typ, err)
		}
		if added == 1 {
			if err := c.Publish(ctx, ns+":types-added", typ).Err(); err != nil {
				t.Fatalf("announce type %s: %v", typ, err)
			}
		}
	}
}

// TestConformanceCluster runs the suite in Streams mode on a three-master
// Redis Cluster of the test's own.
func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the three-node Cluster (it starts three redis-servers)")
	}
	base := startCluster(t)
	h := harness(base, drivertest.Capabilities{Groups: true, Durable: true, Encodes: true, HandbackInOrder: true})
	h.PutRaw = putRaw(base, false)
	drivertest.Run(t, h)
}

// startCluster starts three masters with --cluster-enabled yes, forms the
// cluster with redis-cli and waits until it serves every slot. It returns a
// URL naming the three seeds.
func startCluster(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("no redis-server binary on PATH: cannot start a Redis Cluster for this test")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("no redis-cli binary on PATH: cannot form a Redis Cluster for this test")
	}
	taken := map[int]bool{}
	var addrs []string
	for i := range 3 {
		port := freePort(taken)
		dir := filepath.Join(t.TempDir(), strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		srv, err := launch(dir, port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--appendonly", "no")
		if err != nil {
			t.Fatalf("start cluster node %d: %v", i, err)
		}
		t.Cleanup(srv.kill)
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node must report the cluster ok and know every master.
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond) // the cluster forming: ask until it is ok
	defer tick.Stop()
	for _, addr := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			select {
			case <-deadline.C:
				_ = c.Close()
				t.Fatalf("cluster node %s not ready within 30s: %v %s", addr, err, info)
			case <-tick.C:
			}
		}
		_ = c.Close()
	}
	return fmt.Sprintf("redis://%s?addr=%s&addr=%s", addrs[0], addrs[1], addrs[2])
}
