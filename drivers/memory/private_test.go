package memory_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// records keeps the log records a bus writes.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// warnings returns the messages of the Warn records, with their "type".
func (r *records) warnings() (msgs, types []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Level != slog.LevelWarn {
			continue
		}
		msgs = append(msgs, rec.Message)
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "type" {
				types = append(types, a.Value.String())
			}
			return true
		})
	}
	return msgs, types
}

func openLoggedBus(t *testing.T, driver string, log *records) *gossip.EventBus {
	t.Helper()
	cfg := &gossip.Config{Driver: driver}
	if log != nil {
		cfg.Logger = slog.New(log)
	}
	b, err := gossip.NewEventBus(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Shutdown(context.Background())) })
	return b
}

func nop(context.Context, *gossip.Event) error { return nil }

func TestPrivateBusesWarnOnceThatTheyAreNotConnected(t *testing.T) {
	ctx := context.Background()
	log := &records{}
	publisher := openLoggedBus(t, "memory", log)
	subscriber := openLoggedBus(t, "memory", nil)
	_, err := subscriber.Subscribe("privatewarn.once.created", nop, gossip.Group("mailer"))
	require.NoError(t, err)

	for range 3 {
		require.NoError(t, publisher.Publish(ctx, gossip.NewEvent("privatewarn.once.created", 1)))
	}
	msgs, types := log.warnings()
	require.Len(t, msgs, 1, "one warning, however many events go unheard")
	assert.Contains(t, msgs[0], `"memory://<name>"`)
	assert.Contains(t, msgs[0], "private broker")
	assert.Equal(t, []string{"privatewarn.once.created"}, types)
}

func TestPrivateBusWarnsWhenTheOtherSubscribesAfterAnUnheardPublish(t *testing.T) {
	ctx := context.Background()
	log := &records{}
	publisher := openLoggedBus(t, "memory", log)
	subscriber := openLoggedBus(t, "memory", nil)

	require.NoError(t, publisher.Publish(ctx, gossip.NewEvent("privatewarn.late.created", 1)))
	msgs, _ := log.warnings()
	require.Empty(t, msgs, "nobody subscribes yet")

	_, err := subscriber.Subscribe("privatewarn.late.>", nop)
	require.NoError(t, err)
	require.NoError(t, publisher.Publish(ctx, gossip.NewEvent("privatewarn.late.created", 1)))
	msgs, _ = log.warnings()
	assert.Len(t, msgs, 1)
}

func TestNoWarningWhereNothingWasMissed(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(t *testing.T, log *records) *gossip.EventBus // returns the publisher
	}{
		{"no other bus subscribes to the type", func(t *testing.T, log *records) *gossip.EventBus {
			other := openLoggedBus(t, "memory", nil)
			_, err := other.Subscribe("privatewarn.none.other", nop)
			require.NoError(t, err)
			return openLoggedBus(t, "memory", log)
		}},
		{"the other bus has shut down", func(t *testing.T, log *records) *gossip.EventBus {
			other, err := gossip.NewEventBus(&gossip.Config{Driver: "memory"})
			require.NoError(t, err)
			_, err = other.Subscribe("privatewarn.none.created", nop, gossip.Group("mailer"))
			require.NoError(t, err)
			require.NoError(t, other.Shutdown(ctx))
			return openLoggedBus(t, "memory", log)
		}},
		{"the buses share a named broker", func(t *testing.T, log *records) *gossip.EventBus {
			other := openLoggedBus(t, "memory://privatewarn-named", nil)
			_, err := other.Subscribe("privatewarn.none.created", nop)
			require.NoError(t, err)
			openLoggedBus(t, "memory://privatewarn-unused", nil)
			return openLoggedBus(t, "memory://privatewarn-quiet", log)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := &records{}
			publisher := tc.setup(t, log)
			require.NoError(t, publisher.Publish(ctx, gossip.NewEvent("privatewarn.none.created", 1)))
			msgs, _ := log.warnings()
			assert.Empty(t, msgs)
		})
	}
}
