package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"
)

// natsServer is a nats-server with JetStream on a free loopback port,
// storing in a temporary directory: in a child process (this binary run
// with -serve-nats), so that the bench process's CPU and allocations are
// the clients' alone, or embedded in the bench process when that fails or
// -nats-embedded asks for it.
type natsServer struct {
	srv   *natsserver.Server // embedded
	cmd   *exec.Cmd          // child process
	stdin io.Closer          // closing it stops the child
	dir   string
	URL   string
}

// natsOptions are the server's options, the same in both places.
func natsOptions(dir string) *natsserver.Options {
	return &natsserver.Options{
		Host:      "127.0.0.1",
		Port:      natsserver.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
		// Room for the largest run: a few hundred thousand 256-byte events.
		JetStreamMaxMemory: 1 << 30,
		JetStreamMaxStore:  8 << 30,
		MaxPayload:         1 << 20,
	}
}

func startNATS(embedded bool) (*natsServer, error) {
	dir, err := os.MkdirTemp("", "gossip-bench-nats-")
	if err != nil {
		return nil, err
	}
	if !embedded {
		s, err := startNATSProcess(dir)
		if err == nil {
			return s, nil
		}
		log.Printf("nats-server in a child process: %v; embedding it (client CPU and allocations then include the server's)", err)
	}
	srv, err := startEmbeddedNATS(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &natsServer{srv: srv, dir: dir, URL: srv.ClientURL()}, nil
}

func startEmbeddedNATS(dir string) (*natsserver.Server, error) {
	srv, err := natsserver.NewServer(natsOptions(dir))
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats-server: not ready within 10s")
	}
	return srv, nil
}

// startNATSProcess runs this binary with -serve-nats and reads the URL it
// prints. The child stops when its stdin closes, so also when this process
// dies.
func startNATSProcess(dir string) (*natsServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve-nats", dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &natsServer{cmd: cmd, stdin: stdin, dir: dir}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case s.URL = <-line:
	case <-time.After(15 * time.Second):
	}
	if !strings.HasPrefix(s.URL, "nats://") {
		s.stopProcess()
		return nil, fmt.Errorf("no URL from the child within 15s (got %q)", s.URL)
	}
	return s, nil
}

// serveNATS is the child's side: serve until stdin closes.
func serveNATS(dir string) error {
	srv, err := startEmbeddedNATS(dir)
	if err != nil {
		return err
	}
	fmt.Println(srv.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}

// Embedded is whether the server runs in the bench process.
func (s *natsServer) Embedded() bool { return s.srv != nil }

// CPU is the child server's CPU time so far; 0 when embedded.
func (s *natsServer) CPU() time.Duration {
	if s.cmd == nil {
		return 0
	}
	return procCPU(s.cmd.Process.Pid)
}

func (s *natsServer) stopProcess() {
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

func (s *natsServer) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	} else {
		s.stopProcess()
	}
	os.RemoveAll(s.dir)
}

// redisServer is a redis-server from PATH on a free loopback port, without
// persistence.
type redisServer struct {
	cmd  *exec.Cmd
	Addr string
	URL  string
}

func startRedis() (*redisServer, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not on PATH: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	s := &redisServer{cmd: cmd, Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	s.URL = "redis://" + s.Addr + "/0"
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redis-server on %s: not ready within 10s: %w", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *redisServer) Stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// CPU is the server process's CPU time so far (user + system), read from
// /proc; zero where /proc is missing.
func (s *redisServer) CPU() time.Duration {
	if s == nil {
		return 0
	}
	return procCPU(s.cmd.Process.Pid)
}

func procCPU(pid int) time.Duration {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	// Fields after the command name, which is in parentheses.
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(line[i+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
