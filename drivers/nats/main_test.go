package nats_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/drivers/nats/natsserver"
)

// shared is the embedded JetStream server most tests use, in this process.
var shared *natsserver.Server

// childServerEnv makes the test binary run an embedded server and nothing
// else: see startChildServer.
const childServerEnv = "GOSSIP_NATS_TEST_CHILD_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(childServerEnv) == "1" {
		runChildServer()
		return
	}
	srv, err := natsserver.Start(natsserver.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start embedded nats-server:", err)
		os.Exit(1)
	}
	shared = srv
	code := m.Run()
	stopChildServer()
	srv.Shutdown()
	if code == 0 {
		// Only this package's own goroutines count: the servers are shut down.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// runChildServer runs an embedded server until its stdin closes, after
// printing its URL.
func runChildServer() {
	srv, err := natsserver.Start(natsserver.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start embedded nats-server:", err)
		os.Exit(1)
	}
	fmt.Println(srv.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Shutdown()
	os.Exit(0)
}

var child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
}

// startChildServer starts this test binary as an embedded server in a
// process of its own and returns its URL. The conformance suite's
// ShutdownLeaksNoGoroutine test counts every goroutine of the process, and
// the streams and durable consumers it makes run goroutines in an
// in-process server for as long as they exist; with the server in another
// process the test checks what it means to: that a bus's Shutdown leaves
// none of the client's goroutines behind.
func startChildServer(t testing.TB) string {
	t.Helper()
	if child.url != "" {
		return child.url
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childServerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = stdin.Close()
		_ = cmd.Wait()
		t.Fatalf("child nats-server: %v", err)
	}
	child.cmd, child.stdin, child.url = cmd, stdin, strings.TrimSpace(line)
	return child.url
}

func stopChildServer() {
	if child.cmd != nil {
		_ = child.stdin.Close()
		_ = child.cmd.Wait()
	}
}
