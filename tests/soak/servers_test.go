package soak

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// password is the servers' password: it holds the marker `make test`'s
// output scan looks for, so a driver that printed it while reconnecting
// would fail the build.
const password = "TOPSECRET-soak-pw"

// server is a redis-server or nats-server process of the test's own, on a
// loopback port and data directory that stay the same across restarts.
type server struct {
	name  string   // "redis-server" or "nats-server", for messages
	bin   string   // the binary
	args  []string // its arguments
	dir   string   // its data directory, holding its log
	log   string   // its log file
	port  int
	ready func(addr string) error // whether it answers as a server
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
}

// findBinary looks name up on PATH, then in the directories servers are
// installed in (nats-server is in /usr/sbin on Debian, off a user's PATH);
// it skips the test when none has it, or fails it under CI=true, where the
// soak must run.
func findBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var places []string
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		places = append(places, filepath.Join(dir, name))
	}
	for _, p := range places {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	why := fmt.Sprintf("no %s binary on PATH or in %v: the soak needs a server process of its own to kill and stop", name, places)
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (CI=true: the soak must run)")
	}
	t.Skip(why)
	return ""
}

// startRedis starts a redis-server with append-only persistence fsynced
// before every reply (appendfsync always): a confirmed XADD is on disk, so
// it survives a SIGKILL and the restart must bring it back. With the
// default appendfsync everysec Redis may answer before it has even
// written the entry to its file (a write is put off while an fsync is under
// way), so a SIGKILL could lose a confirmed event: "confirmed" would then
// mean "in the server's memory", and the test would measure Redis, not
// gossip.
func startRedis(t *testing.T) *server {
	t.Helper()
	bin := findBinary(t, "redis-server")
	dir := t.TempDir()
	s := &server{name: "redis-server", bin: bin, dir: dir, log: filepath.Join(dir, "redis.log"), port: freePort(t), ready: redisReady}
	s.args = []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--requirepass", password, "--daemonize", "no", "--logfile", s.log,
	}
	s.startOrFail(t)
	return s
}

// startNATS starts a nats-server with JetStream storing in a directory of
// its own.
func startNATS(t *testing.T) *server {
	t.Helper()
	bin := findBinary(t, "nats-server")
	dir := t.TempDir()
	s := &server{name: "nats-server", bin: bin, dir: dir, log: filepath.Join(dir, "nats.log"), port: freePort(t), ready: natsReady}
	s.args = []string{
		"-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", filepath.Join(dir, "js"),
		"--user", "soak", "--pass", password, "-l", s.log,
	}
	s.startOrFail(t)
	return s
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *server) startOrFail(t *testing.T) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("start %s: %v", s.name, err)
	}
	t.Cleanup(s.kill)
}

// start runs the server and waits, at most 20 s, until it answers.
func (s *server) start() error {
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.SysProcAttr = detached()
	if err := s.cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	s.done = done
	go func(cmd *exec.Cmd) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd)
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond) // a starting server: ask until it answers
	defer tick.Stop()
	for {
		err := s.ready(s.addr())
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s on %s exited: %s", s.name, s.addr(), s.lastLog(5))
		case <-deadline.C:
			s.kill()
			return fmt.Errorf("%s on %s did not answer within 20s: %v", s.name, s.addr(), err)
		case <-tick.C:
		}
	}
}

// kill SIGKILLs the server and waits until it is gone; a stopped server is
// killed too.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		panic(fmt.Sprintf("%s pid %d did not exit within 10s of SIGKILL", s.name, s.cmd.Process.Pid))
	}
}

// restart kills the server and, after down, starts it again on the same
// port and data directory.
func (s *server) restart(down time.Duration) error {
	s.kill()
	gone := time.NewTimer(down) // the scenario itself: the server is down this long
	defer gone.Stop()
	<-gone.C
	return s.start()
}

// freeze stops the server for d (SIGSTOP, then SIGCONT): its connections
// stay open and nothing answers.
func (s *server) freeze(d time.Duration) error {
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	frozen := time.NewTimer(d) // the scenario itself: the server is stopped this long
	defer frozen.Stop()
	<-frozen.C
	return s.cmd.Process.Signal(syscall.SIGCONT)
}

// lastLog returns the last n lines of the server's log.
func (s *server) lastLog(n int) string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// exchange sends req on a new connection to addr and reads reply lines until
// done says the reply is complete; the whole exchange takes at most a second.
func exchange(addr, req string, done func(line string) (bool, error)) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if ok, err := done(strings.TrimRight(line, "\r\n")); ok || err != nil {
			return err
		}
	}
}

// redisReady: AUTH and PING answered, with the data loaded (a server still
// reading its append-only file answers -LOADING).
func redisReady(addr string) error {
	n := 0
	return exchange(addr, "AUTH "+password+"\r\nPING\r\n", func(line string) (bool, error) {
		if strings.HasPrefix(line, "-") {
			return false, errors.New(line)
		}
		n++
		return n == 2, nil
	})
}

// natsReady: CONNECT with the password, PING answered. nats-server enables
// JetStream and recovers its streams before it accepts clients, so an
// answer means the stream is back too.
func natsReady(addr string) error {
	req := `CONNECT {"verbose":false,"pedantic":false,"user":"soak","pass":"` + password + `"}` + "\r\nPING\r\n"
	return exchange(addr, req, func(line string) (bool, error) {
		switch {
		case strings.HasPrefix(line, "-ERR"):
			return false, errors.New(line)
		case line == "PONG":
			return true, nil
		}
		return false, nil // INFO
	})
}
