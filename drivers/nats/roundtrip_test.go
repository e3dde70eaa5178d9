package nats_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// modes are the URL parameters of the driver's two modes.
var modes = []struct{ name, param string }{{"jetstream", ""}, {"core", "&mode=core"}}

// IDs that differ only in line breaks and outer white space, and metadata
// values of every kind, arrive byte for byte in both modes; none collides
// with another in JetStream's duplicate window (Publish returned nil for
// each, so each must be handled). Metadata keys differing only in case stay
// two keys: NATS headers are case-sensitive.
func TestIDsAndMetadataRoundTripExactly(t *testing.T) {
	ids := []string{"x", "x\r", "x\n", "x\r\n", " x", "x ", " x ", "\tx"[1:] + "\u00a0", " ", "  ", "%41", `"x"`, "ид ✓",
		"a\r\nb", "a\nb"}
	// Control characters are refused by gossip at Publish (the ID rule), so
	// only the allowed IDs go out: keep those.
	meta := map[string]string{
		"crlf": "line1\r\nline2", "lf": "\n", "outer": "  padded  ", "space": " ", "empty": "",
		"pct": "%41 %zz %", "quotes": `"q"`, "latin": "värde ✓ 世界", "tab": "\t",
		"Foo": "upper", "foo": "lower", "with space": "k", "ключ": "v",
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			bus := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + prefix(t) + mode.param})
			var mu sync.Mutex
			got := map[string]map[string]string{}
			signal := make(chan struct{}, 1)
			_, err := bus.Subscribe("probe.id", func(_ context.Context, e *gossip.Event) error {
				mu.Lock()
				got[e.ID] = e.Metadata
				mu.Unlock()
				select {
				case signal <- struct{}{}:
				default:
				}
				return nil
			}, gossip.Group("g"))
			require.NoError(t, err)

			var sent []string
			for _, id := range ids {
				e := gossip.NewEvent("probe.id", 1)
				e.ID = id
				for k, v := range meta {
					e.WithMetadata(k, v)
				}
				if err := bus.Publish(context.Background(), e); err != nil {
					t.Logf("Publish refused ID %q: %v", id, err)
					continue
				}
				sent = append(sent, id)
			}
			require.GreaterOrEqual(t, len(sent), 8, "at least 8 of the IDs are publishable")
			deadline := time.After(10 * time.Second)
			for {
				mu.Lock()
				n := len(got)
				mu.Unlock()
				if n >= len(sent) {
					break
				}
				select {
				case <-signal:
				case <-deadline:
					mu.Lock()
					defer mu.Unlock()
					require.FailNowf(t, "lost events", "%d of %d handled: %q", len(got), len(sent), keys(got))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range sent {
				require.Contains(t, got, id, "ID %q arrives as it was", id)
				for k, v := range meta {
					assert.Equal(t, v, got[id][k], "ID %q: metadata %q", id, k)
				}
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
