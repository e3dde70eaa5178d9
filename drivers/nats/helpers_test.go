package nats_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// prefix returns a subject prefix (and stream name) unique to the test.
func prefix(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return fmt.Sprintf("%s_%x", strings.Trim(name, "_"), rand.Uint32())
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newBus opens a bus on cfg, shut down when the test ends.
func newBus(t testing.TB, cfg gossip.Config) *gossip.EventBus {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.Source == "" {
		cfg.Source = "nats-test"
	}
	b, err := gossip.NewEventBus(&cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	return b
}

// ledger records event IDs and signals each change.
type ledger struct {
	mu     sync.Mutex
	ids    map[string]int
	signal chan struct{}
}

func newLedger() *ledger { return &ledger{ids: map[string]int{}, signal: make(chan struct{}, 1)} }

func (l *ledger) add(id string) {
	l.mu.Lock()
	l.ids[id]++
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

func (l *ledger) has(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[id] > 0
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids)
}

func (l *ledger) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.ids))
	for id := range l.ids {
		out = append(out, id)
	}
	return out
}

// handler records each event it sees.
func (l *ledger) handler(ctx context.Context, e *gossip.Event) error {
	l.add(e.ID)
	return nil
}

// waitFor waits until every ID in want is in l.
func (l *ledger) waitFor(t testing.TB, want []string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		missing := 0
		for _, id := range want {
			if !l.has(id) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-l.signal:
		case <-deadline.C:
			require.FailNowf(t, "timed out", "waited %v: %d of %d events not handled", timeout, missing, len(want))
		}
	}
}

// waitN waits until l holds n distinct IDs.
func (l *ledger) waitN(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for l.len() < n {
		select {
		case <-l.signal:
		case <-deadline.C:
			require.FailNowf(t, "timed out", "waited %v for %d events, have %d", timeout, n, l.len())
		}
	}
}

func recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		require.FailNowf(t, "timed out", "waited %v for %s", timeout, what)
	}
	var zero T
	return zero
}
