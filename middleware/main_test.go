package middleware_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/gossip"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for something asynchronous.
const waitLimit = 5 * time.Second

// newBus opens a memory bus that is shut down when the test ends. A nil cfg
// is a bus whose own diagnostics are discarded.
func newBus(t *testing.T, cfg *gossip.Config) *gossip.EventBus {
	t.Helper()
	if cfg == nil {
		cfg = &gossip.Config{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	bus, err := gossip.NewEventBus(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { shutdown(t, bus) })
	return bus
}

func shutdown(t *testing.T, bus *gossip.EventBus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, bus.Shutdown(ctx))
}

// receive returns the next value from ch, failing the test if none comes
// within waitLimit.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("nothing received within %v", waitLimit)
		var zero T
		return zero
	}
}

// logLines decodes the JSON lines slog.NewJSONHandler wrote to buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "log line %s", sc.Text())
		lines = append(lines, m)
	}
	require.NoError(t, sc.Err())
	return lines
}

// recordChan is an io.Writer for slog.NewJSONHandler that hands every log
// line to a channel, so a test can wait for a line written on another
// goroutine.
type recordChan chan map[string]any

func (c recordChan) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return 0, err
	}
	c <- m
	return len(p), nil
}
