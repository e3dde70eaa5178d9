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
	drivertest.Run(t, harness(testURL, drivertest.Capabilities{Groups: true, Durable: true, Encodes: true}))
}

func TestConformancePubSub(t *testing.T) {
	requireRedis(t)
	drivertest.Run(t, harness(testURL, drivertest.Capabilities{Encodes: true}, "mode", "pubsub"))
}

// TestConformanceCluster runs the suite in Streams mode on a three-master
// Redis Cluster of the test's own.
func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the three-node Cluster (it starts three redis-servers)")
	}
	base := startCluster(t)
	drivertest.Run(t, harness(base, drivertest.Capabilities{Groups: true, Durable: true, Encodes: true}))
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
