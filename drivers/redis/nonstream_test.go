package redis_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// A key under the prefix that is not a stream (a string, a hash, a list),
// announced as a new event type, does not stop a pattern subscription: it
// is skipped and logged once, and the other streams keep flowing.
func TestNonStreamKeyIsSkipped(t *testing.T) {
	requireRedis(t)
	for _, tc := range []struct {
		name  string
		group string
	}{
		{name: "listener"},
		{name: "group", group: "g"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNS(t)
			logs := newLogCounter()
			bus := newBus(t, withParams(testURL, "refresh_interval", "100ms"), ns, func(c *gossip.Config) { c.Logger = slog.New(logs) })
			rc := plainClient(t)
			ctx := context.Background()
			// A bad key there before Subscribe.
			require.NoError(t, rc.Set(ctx, ns+":{wrong.early}:stream", "x", 0).Err())
			require.NoError(t, rc.SAdd(ctx, ns+":types", "wrong.early").Err())
			got := make(chan string, 64)
			var opts []gossip.SubscribeOption
			if tc.group != "" {
				opts = append(opts, gossip.Group(tc.group))
			}
			_, err := bus.Subscribe("wrong.>", func(ctx context.Context, e *gossip.Event) error {
				got <- string(e.Type) + "/" + e.ID
				return nil
			}, opts...)
			require.NoError(t, err)
			// A stream read before the bad keys arrive.
			require.NoError(t, bus.Publish(ctx, gossip.NewEvent("wrong.before", 0)))
			collect(t, got, 1, 10*time.Second, "the event before the bad keys")

			for typ, write := range map[string]func(key string) error{
				"wrong.string": func(k string) error { return rc.Set(ctx, k, "x", 0).Err() },
				"wrong.hash":   func(k string) error { return rc.HSet(ctx, k, "f", "v").Err() },
				"wrong.list":   func(k string) error { return rc.RPush(ctx, k, "v").Err() },
			} {
				require.NoError(t, write(ns+":{"+typ+"}:stream"))
				// Announced as a new type, as a publisher's registration does.
				require.NoError(t, rc.SAdd(ctx, ns+":types", typ).Err())
				require.NoError(t, rc.Publish(ctx, ns+":types-added", typ).Err())
			}
			// Events on the stream read before and on a new one.
			for i := range 10 {
				typ := gossip.EventType("wrong.before")
				if i%2 == 1 {
					typ = "wrong.after"
				}
				require.NoError(t, bus.Publish(ctx, gossip.NewEvent(typ, i)))
			}
			collect(t, got, 10, 15*time.Second, "the 10 events after the bad keys")
			for _, typ := range []string{"wrong.early", "wrong.string", "wrong.hash", "wrong.list"} {
				assert.True(t, logs.WaitFor("{"+typ+"}", 1, 5*time.Second), "no log line about %s", typ)
			}
			// Several registry refreshes (every 100ms) later, the bad keys
			// are still skipped, and were logged once each.
			for range 3 {
				require.NoError(t, bus.Publish(ctx, gossip.NewEvent("wrong.late", 0)))
				collect(t, got, 1, 10*time.Second, "an event after the refreshes")
			}
			logs.WaitFor("never logged", 1, 500*time.Millisecond) // a few refreshes
			require.NoError(t, bus.Publish(ctx, gossip.NewEvent("wrong.late", 0)))
			collect(t, got, 1, 10*time.Second, "an event after the refreshes")
			for _, typ := range []string{"wrong.early", "wrong.string", "wrong.hash", "wrong.list"} {
				assert.Equal(t, 1, logs.Count("{"+typ+"}"), "log lines about %s: %q", typ, logs.Lines())
			}
		})
	}
}
