package gossip_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/gossipbus/gossip/internal/testdriver"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// logRecorder keeps the records logged through it.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}

// dropLines are the drop log lines so far, each as its attributes.
func (r *logRecorder) dropLines() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, rec := range r.recs {
		if !strings.Contains(rec.Message, "dropped events") {
			continue
		}
		attrs := map[string]any{"closed": strings.Contains(rec.Message, "closed")}
		rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.Any(); return true })
		out = append(out, attrs)
	}
	return out
}

type drop struct {
	pattern gossip.EventType
	group   string
	n       int
}

// What a transport drops is counted on the subscription, told to the drop
// observers, logged at once and then at most every 10s, and the rest logged
// when the subscription closes.
func TestDropsAreCountedObservedAndLogged(t *testing.T) {
	conn := &testdriver.Conn{Specs: make(chan driver.SubscribeSpec, 2)}
	rec := &logRecorder{}
	b, err := gossip.NewEventBus(&gossip.Config{Conn: conn, Logger: slog.New(rec)})
	require.NoError(t, err)
	var mu sync.Mutex
	var observed []drop
	b.ObserveDrops(func(p gossip.EventType, g string, n int) {
		mu.Lock()
		observed = append(observed, drop{p, g, n})
		mu.Unlock()
	})
	nop := func(context.Context, *gossip.Event) error { return nil }
	grouped, err := b.Subscribe("orders.*", nop, gossip.Group("billing"))
	require.NoError(t, err)
	spec := <-conn.Specs
	broadcast, err := b.Subscribe("audit.>", nop)
	require.NoError(t, err)
	other := <-conn.Specs

	spec.Dropped(3)
	spec.Dropped(2) // within 10s of the first line: counted, not logged yet
	spec.Dropped(0)
	spec.Dropped(-1)
	other.Dropped(1)
	assert.Equal(t, uint64(5), grouped.Dropped())
	assert.Equal(t, uint64(1), broadcast.Dropped())
	mu.Lock()
	assert.Equal(t, []drop{{"orders.*", "billing", 3}, {"orders.*", "billing", 2}, {"audit.>", "", 1}}, observed)
	mu.Unlock()
	assert.Equal(t, []map[string]any{
		{"closed": false, "pattern": "orders.*", "group": "billing", "dropped": uint64(3), "dropped_total": uint64(3)},
		{"closed": false, "pattern": "audit.>", "group": "", "dropped": uint64(1), "dropped_total": uint64(1)},
	}, rec.dropLines())

	require.NoError(t, b.Shutdown(context.Background()))
	lines := rec.dropLines()
	require.Len(t, lines, 3, "one more line, for the drops not logged yet; none for the subscription whose drops were all logged")
	assert.Equal(t, map[string]any{"closed": true, "pattern": "orders.*", "group": "billing", "dropped": uint64(2), "dropped_total": uint64(5)}, lines[2])
}
