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
// and the idempotent consumer handles it once. On Redis the consumer sees
// the second copy and drops it; on NATS JetStream's duplicate window
// (Nats-Msg-Id is the event ID) drops it before.
func TestRelayKilledAfterPublishResendsTheSameID(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a dead relay's lease to end")
	}
	for _, db := range databases {
		for _, tr := range transports[1:] { // across processes: not memory
			t.Run(db.name+"/"+tr.name, func(t *testing.T) {
				dsn := db.dsn(t)
				o := newOutbox(t, openDB(t, dsn))
				url := tr.url(t)
				consumerBus := newBus(t, url, gossip.Config{})
				c := newConsumer()
				_, err := consumerBus.Subscribe("accounts.>", c.handle, gossip.Group("g"), gossip.Workers(1))
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
				// A later event of the same type: once it is handled, the
				// re-sent copy has been delivered (or dropped by JetStream).
				next := gossip.NewEvent("accounts.opened", map[string]int{"n": 2})
				write(t, o, true, next)
				c.waitFor(t, next.ID)
				if tr.name == "nats" {
					assert.Equal(t, 1, c.count(e.ID), "JetStream drops the re-send by its Nats-Msg-Id")
				} else {
					assert.Equal(t, 2, c.count(e.ID), "the re-send reaches the consumer, which drops it")
				}
				c.mu.Lock()
				assert.Len(t, c.order, 2, "each event handled once")
				c.mu.Unlock()
				eventuallyPending(t, o, 0)
			})
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
