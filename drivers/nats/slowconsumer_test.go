package nats_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// logLines is a slog handler that keeps every record's message.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, r.Level.String()+" "+r.Message)
	return nil
}

func (l *logLines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// In core mode a slow handler behind a fast publisher does not grow the
// process: the client holds at most pending_msgs messages (and
// pending_bytes bytes) for the subscription, drops the rest (core NATS is
// at-most-once), and the drops are counted in Subscription.Dropped and
// logged.
func TestCoreSlowConsumerIsBoundedAndReportsDrops(t *testing.T) {
	const buffer, n = 8, 2000
	logs := &logLines{}
	url := fmt.Sprintf("%s?mode=core&flush=sync&pending_msgs=%d&prefix=%s", shared.URL(), buffer, prefix(t))
	bus := newBus(t, gossip.Config{Driver: url, BufferSize: buffer, Logger: slog.New(logs)})
	release := make(chan struct{})
	var handled atomic.Int64
	signal := make(chan struct{}, 1)
	sub, err := bus.Subscribe("slow.work", func(ctx context.Context, e *gossip.Event) error {
		<-release
		handled.Add(1)
		select {
		case signal <- struct{}{}:
		default:
		}
		return nil
	}, gossip.Workers(1))
	require.NoError(t, err)

	events := make([]*gossip.Event, n)
	for i := range events {
		events[i] = gossip.NewEvent("slow.work", i)
	}
	// One connection publishes and subscribes: when Publish's flush
	// (flush=sync) returns, the client has read every message the server
	// sent it.
	require.NoError(t, bus.Publish(context.Background(), events...))
	close(release)

	deadline := time.After(20 * time.Second)
	for handled.Load()+int64(sub.Dropped()) < n {
		select {
		case <-signal:
		case <-deadline:
			require.FailNowf(t, "timed out", "handled %d + dropped %d of %d", handled.Load(), sub.Dropped(), n)
		}
	}
	// In flight at most: the client's pending queue (pending_msgs), the
	// Deliveries channel (BufferSize), the worker, and the one message
	// being handed over.
	assert.LessOrEqual(t, handled.Load(), int64(2*buffer+3), "handled")
	assert.Greater(t, sub.Dropped(), uint64(0), "dropped")
	assert.Equal(t, int64(n), handled.Load()+int64(sub.Dropped()), "every event is handled or counted as dropped")
	assert.GreaterOrEqual(t, logs.count("WARN gossip: the transport dropped events"), 1, "a warning says so")
	assert.LessOrEqual(t, logs.count("dropped"), 2, "not a line per drop")
}
