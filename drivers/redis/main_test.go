package redis_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/drivertest"
)

// testURL is the Redis the tests use: GOSSIP_REDIS_URL, else
// 127.0.0.1:6379 if it answers, else a redis-server from PATH started for
// the run. Empty when none exists (the tests then skip, or fail in CI).
var testURL string

// whyNoRedis says what was tried when testURL is empty.
var whyNoRedis string

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(runner{m})
}

type runner struct{ m *testing.M }

func (r runner) Run() int {
	stop := findRedis()
	defer stop()
	if testURL == "" {
		msg := "\n*** gossip/drivers/redis: NO REDIS SERVER: " + whyNoRedis + ".\n" +
			"*** The Redis tests are SKIPPED. Set GOSSIP_REDIS_URL, run Redis on 127.0.0.1:6379, or put redis-server on PATH.\n"
		fmt.Fprint(os.Stderr, msg)
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "*** CI=true: a real Redis is required; failing.")
			return 1
		}
	}
	return r.m.Run()
}

func findRedis() (stop func()) {
	if u := os.Getenv("GOSSIP_REDIS_URL"); u != "" {
		testURL = u
		return func() {}
	}
	if answers("127.0.0.1:6379") {
		testURL = "redis://127.0.0.1:6379/0"
		return func() {}
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		whyNoRedis = "GOSSIP_REDIS_URL is unset, nothing answers on 127.0.0.1:6379 and redis-server is not on PATH"
		return func() {}
	}
	dir, err := os.MkdirTemp("", "gossip-redis-")
	if err != nil {
		whyNoRedis = err.Error()
		return func() {}
	}
	port := freePort(nil)
	srv, err := launch(dir, port)
	if err != nil {
		whyNoRedis = "redis-server did not start: " + err.Error()
		_ = os.RemoveAll(dir)
		return func() {}
	}
	testURL = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	fmt.Fprintf(os.Stderr, "gossip/drivers/redis: started redis-server on 127.0.0.1:%d for the run\n", port)
	return func() {
		srv.kill()
		_ = os.RemoveAll(dir)
	}
}

// answers reports whether a Redis answers PING at addr.
func answers(addr string) bool {
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}

// requireRedis skips the test (or fails it in CI) when there is no Redis.
func requireRedis(t testing.TB) {
	t.Helper()
	if testURL == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis (%s); CI needs a real one", whyNoRedis)
		}
		t.Skipf("no Redis: %s", whyNoRedis)
	}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// withParams adds query parameters to a URL.
func withParams(base string, kv ...string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// newNS returns a key prefix of the test's own, whose keys are deleted when
// the test ends.
func newNS(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 30 {
		name = name[len(name)-30:]
	}
	ns := fmt.Sprintf("gt_%s_%x", name, rand.Uint32())
	t.Cleanup(func() { deleteKeys(t, testURL, ns) })
	return ns
}

// newClient returns a client on url (a Cluster client for a URL with addr
// parameters), closed when the test ends.
func newClient(t testing.TB, rawURL string) goredis.UniversalClient {
	t.Helper()
	var c goredis.UniversalClient
	if strings.Contains(rawURL, "addr=") {
		o, err := goredis.ParseClusterURL(rawURL)
		if err != nil {
			t.Fatal(err)
		}
		c = goredis.NewClusterClient(o)
	} else {
		o, err := goredis.ParseURL(rawURL)
		if err != nil {
			t.Fatal(err)
		}
		c = goredis.NewClient(o)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// deleteKeys deletes every key of the prefix ns (SCAN + DEL, on every
// master of a Cluster).
func deleteKeys(t testing.TB, rawURL, ns string) {
	if rawURL == "" {
		return
	}
	var c goredis.UniversalClient
	if strings.Contains(rawURL, "addr=") {
		o, err := goredis.ParseClusterURL(rawURL)
		if err != nil {
			return
		}
		c = goredis.NewClusterClient(o)
	} else {
		o, err := goredis.ParseURL(rawURL)
		if err != nil {
			return
		}
		c = goredis.NewClient(o)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	del := func(ctx context.Context, node *goredis.Client) error {
		iter := node.Scan(ctx, 0, ns+":*", 500).Iterator()
		for iter.Next(ctx) {
			node.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	var err error
	switch cc := c.(type) {
	case *goredis.ClusterClient:
		err = cc.ForEachMaster(ctx, del)
	case *goredis.Client:
		err = del(ctx, cc)
	}
	if err != nil {
		t.Logf("cleaning up keys %s:*: %v", ns, err)
	}
}

// harness runs the conformance suite on base with extra URL parameters;
// each test namespace is a key prefix.
func harness(base string, caps drivertest.Capabilities, kv ...string) drivertest.Harness {
	var cleaned sync.Map
	return drivertest.Harness{
		Capabilities: caps,
		Timeout:      20 * time.Second,
		Config: func(t testing.TB, ns string) gossip.Config {
			if _, seen := cleaned.LoadOrStore(ns, true); !seen {
				t.Cleanup(func() { deleteKeys(t, base, ns) })
			}
			return gossip.Config{Driver: withParams(base, append([]string{"prefix", ns}, kv...)...)}
		},
	}
}

// server is a redis-server of a test's own.
type server struct {
	cmd  *exec.Cmd
	dir  string
	port int
	args []string
	done chan struct{}
}

// freePort returns a free loopback port; with free, one whose port+10000
// (the Cluster bus port) is free too and not among taken.
func freePort(taken map[int]bool) int {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if taken == nil {
			return port
		}
		if port+10000 > 65535 || taken[port] || taken[port+10000] {
			continue
		}
		if l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			_ = l2.Close()
			taken[port], taken[port+10000] = true, true
			return port
		}
	}
}

// launch starts redis-server on port with dir as its working directory and
// waits until it answers PING.
func launch(dir string, port int, extra ...string) (*server, error) {
	s := &server{dir: dir, port: port}
	s.args = append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
	}, extra...)
	return s, s.start()
}

func (s *server) start() error {
	s.cmd = exec.Command("redis-server", s.args...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	addr := "127.0.0.1:" + strconv.Itoa(s.port)
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond) // a server starting: ask it until it answers
	defer tick.Stop()
	for !answersLoading(addr) {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %s", lastLines(string(log), 5))
		case <-deadline.C:
			s.kill()
			return fmt.Errorf("redis-server on %s did not answer within 15s", addr)
		case <-tick.C:
		}
	}
	return nil
}

// answersLoading reports whether the server answers PING with the data
// loaded.
func answersLoading(addr string) bool {
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}

// kill stops the server with SIGKILL: no shutdown, no last save.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
