package outbox_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
)

// helperEnv carries the relay subprocess's settings (a crashSpec as JSON).
const helperEnv = "GOSSIP_OUTBOX_RELAY_HELPER"

type crashSpec struct {
	DSN, Table, Bus string
}

// helperLease is the lease of the subprocess's relay: how long the rows
// it dies holding wait for the next relay.
const helperLease = 2 * time.Second

// TestHelperRelay is the relay process TestRelayKilledAfterPublish kills:
// it publishes one batch, prints its IDs and stops before marking them
// sent, as if the machine died there.
func TestHelperRelay(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("the relay subprocess of TestRelayKilledAfterPublish: runs only when that test starts it")
	}
	var spec crashSpec
	require.NoError(t, json.Unmarshal([]byte(raw), &spec))
	o, err := outbox.New(openDB(t, spec.DSN), outbox.Options{Table: spec.Table})
	require.NoError(t, err)
	bus, err := gossip.NewEventBus(&gossip.Config{Driver: spec.Bus, Logger: quiet})
	require.NoError(t, err)
	r := newRelay(t, o, bus, outbox.RelayOptions{Lease: helperLease, PublishTimeout: time.Second})
	outbox.SetAfterPublish(r, func(ids []string) {
		fmt.Printf("published %s\n", strings.Join(ids, ","))
		select {} // killed here
	})
	_ = r.Run(context.Background())
}

// A relay killed (SIGKILL) after the transport took a row and before it
// marked it sent: the next relay sends the row again, with the same ID,
// and a consumer behind the idempotency middleware (on a claim store of
// the transport) runs its handler once. On Redis, and on NATS with a
// duplicate window shorter than the lease, the transport delivers the
// second copy (counted outside the middleware) and the middleware drops
// it; on NATS with the default window JetStream drops it by its
// Nats-Msg-Id before any consumer sees it.
func TestRelayKilledAfterPublishResendsTheSameID(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a dead relay's lease to end")
	}
	type mode struct {
		name      string
		url       func(t *testing.T) string
		jetstream bool // JetStream's duplicate window drops the re-send
	}
	var modes []mode
	for _, tr := range transports[1:] { // across processes: not memory
		modes = append(modes, mode{tr.name, func(t *testing.T) string { return shortDedup(tr, tr.url(t)) }, false})
		if tr.name == "nats" {
			modes = append(modes, mode{"nats-dedup-window", tr.url, true})
		}
	}
	for _, db := range databases {
		for _, m := range modes {
			t.Run(db.name+"/"+m.name, func(t *testing.T) {
				dsn := db.dsn(t)
				o := newOutbox(t, openDB(t, dsn))
				url := m.url(t)
				consumerBus := newBus(t, url, gossip.Config{})
				c := newConsumer()
				_, err := consumerBus.Subscribe("accounts.>", c.idempotent(t, consumerBus), gossip.Group("g"), gossip.Workers(1))
				require.NoError(t, err)
				e := gossip.NewEvent("accounts.opened", map[string]int{"n": 1})
				write(t, o, true, e)

				spec, _ := json.Marshal(crashSpec{DSN: dsn, Table: o.Table(), Bus: url})
				cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRelay$", "-test.count=1")
				cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
				cmd.Stderr = os.Stderr
				out, err := cmd.StdoutPipe()
				require.NoError(t, err)
				require.NoError(t, cmd.Start())
				lines := make(chan string, 1)
				go func() {
					sc := bufio.NewScanner(out)
					for sc.Scan() {
						if strings.HasPrefix(sc.Text(), "published ") {
							lines <- sc.Text()
							break
						}
					}
					close(lines)
					_, _ = bufio.NewReader(out).WriteTo(discard{})
				}()
				select {
				case line := <-lines:
					assert.Equal(t, "published "+e.ID, line)
				case <-time.After(waitLimit):
					t.Error("the relay subprocess published nothing")
				}
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				_ = cmd.Wait()
				c.waitFor(t, e.ID)
				require.Equal(t, 1, pending(t, o), "the killed relay marked the row sent")

				resent := make(chan []string, 10)
				r := newRelay(t, o, newBus(t, url, gossip.Config{}), outbox.RelayOptions{})
				outbox.SetAfterPublish(r, func(ids []string) { resent <- ids })
				runRelay(t, r)
				select {
				case got := <-resent:
					assert.Equal(t, []string{e.ID}, got, "the next relay re-sends the row with its ID")
				case <-time.After(waitLimit):
					t.Fatal("the next relay did not re-send the row")
				}
				if m.jetstream {
					// A later event of the same type: once it is handled, the
					// re-sent copy would have been delivered before it.
					next := gossip.NewEvent("accounts.opened", map[string]int{"n": 2})
					write(t, o, true, next)
					c.waitFor(t, next.ID)
					assert.Equal(t, 1, c.count(e.ID), "JetStream drops the re-send by its Nats-Msg-Id")
				} else {
					c.waitDelivered(t, e.ID, 2)
					assert.Equal(t, 2, c.count(e.ID), "the transport delivers the re-sent copy")
				}
				assert.Equal(t, 1, c.ran(e.ID), "the handler runs once for the ID")
				eventuallyPending(t, o, 0)
			})
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
