package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A run of the one-process-per-service demo handles only its own users'
// events, even when the durable group still holds an earlier run's: it
// waits for its own work instead of counting the leftovers and ending early.
func TestServiceProcessesSeeOnlyTheirRun(t *testing.T) {
	transports := map[string]string{}
	prefix := fmt.Sprintf("demorun%d", time.Now().UnixNano())
	if u := os.Getenv("GOSSIP_NATS_URL"); u != "" {
		transports["nats"] = u + "?prefix=" + prefix
		t.Cleanup(func() { deleteStream(t, u, prefix) })
	}
	if u := os.Getenv("GOSSIP_REDIS_URL"); u != "" {
		transports["redis"] = u + "?prefix=" + prefix
		t.Cleanup(func() { deleteKeys(t, u, prefix) })
	}
	if len(transports) == 0 {
		t.Skip("needs a server that outlives the processes: set GOSSIP_NATS_URL or GOSSIP_REDIS_URL")
	}
	for name, dsn := range transports {
		t.Run(name, func(t *testing.T) {
			// An earlier run leaves two events in the email service's group:
			// the service made its group, went away, and users came.
			stopAfterStart(t, "-driver", dsn, "-service", "email_service", "-run", "old")
			runDemo(t, "-driver", dsn, "-service", "user_service", "-run", "old", "-users", "olga,oscar")

			email := startDemo(t, "-driver", dsn, "-service", "email_service", "-run", "new", "-expect", "2", "-timeout", "20s")
			runDemo(t, "-driver", dsn, "-service", "user_service", "-run", "new", "-users", "nina,ned")
			out, err := email.wait()
			require.NoError(t, err, "the email service exits 0 once it has sent this run's two emails; it printed:\n%s", out)
			assert.Contains(t, out, "welcome email sent to Nina <nina@example.com>")
			assert.Contains(t, out, "welcome email sent to Ned <ned@example.com>")
			assert.NotContains(t, out, "Olga", "an earlier run's event was counted")
			assert.NotContains(t, out, "Oscar", "an earlier run's event was counted")
		})
	}
}

type demoProcess struct {
	cmd    *exec.Cmd
	out    strings.Builder
	lines  chan string
	cancel context.CancelFunc
	err    error // the process's exit, set before done closes
	done   chan struct{}
}

// startDemo starts the example with args; its output lines arrive on lines.
func startDemo(t *testing.T, args ...string) *demoProcess {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	p := &demoProcess{cancel: cancel, lines: make(chan string, 100), done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^$"}, args...)...)
	p.cmd.Env = append(os.Environ(), "GOSSIP_EXAMPLE_MAIN=1")
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	require.NoError(t, p.cmd.Start())
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.out.WriteString(sc.Text() + "\n")
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		_ = w.Close()
	}()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// wait returns what the process printed once it has exited.
func (p *demoProcess) wait() (string, error) {
	<-p.done
	return p.out.String(), p.err
}

// stopAfterStart runs a service until it says it is running, then stops it.
func stopAfterStart(t *testing.T, args ...string) {
	t.Helper()
	p := startDemo(t, args...)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, "running until interrupted") {
				require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
				out, _ := p.wait()
				t.Logf("%s", out)
				return
			}
		case <-p.done:
			t.Fatalf("the service exited before it was running:\n%s", p.out.String())
		case <-deadline:
			t.Fatal("the service did not start in 30s")
		}
	}
}

func deleteStream(t *testing.T, url, prefix string) {
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, prefix)
}
