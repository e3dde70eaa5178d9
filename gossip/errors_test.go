package gossip_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// failingConn is a transport whose every call fails with the errors a real
// one returns, most of them already prefixed "gossip: ".
type failingConn struct{ subscribe, close error }

func (c failingConn) Publish(context.Context, []*driver.Message) error { return nil }
func (c failingConn) Subscribe(context.Context, driver.SubscribeSpec) (driver.Subscription, error) {
	return nil, c.subscribe
}
func (c failingConn) Close(context.Context) error { return c.close }

func nop(context.Context, *gossip.Event) error { return nil }

// TestErrorsSayGossipOnce walks the error paths of NewEventBus, Publish,
// Subscribe and Shutdown: each message starts with "gossip: " and never
// repeats it, and errors.Is still finds the sentinel.
func TestErrorsSayGossipOnce(t *testing.T) {
	ctx := context.Background()
	mem := func(t *testing.T) *gossip.EventBus { return newBus(t, nil) }
	failing := func(t *testing.T) *gossip.EventBus {
		b, err := gossip.NewEventBus(&gossip.Config{Conn: failingConn{
			subscribe: fmt.Errorf("redis: Group %q in Pub/Sub mode: %w", "g", driver.ErrGroupsUnsupported),
			close:     driver.ErrSubscriptionClosed,
		}})
		require.NoError(t, err)
		return b
	}
	bare := func(t *testing.T) *gossip.EventBus {
		b, err := gossip.NewEventBus(&gossip.Config{Conn: failingConn{subscribe: driver.ErrGroupsUnsupported}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Shutdown(ctx) })
		return b
	}
	cases := []struct {
		name string
		run  func(t *testing.T) error
		is   error
	}{
		{"unknown driver", func(t *testing.T) error {
			_, err := gossip.NewEventBus(&gossip.Config{Driver: "nope://x"})
			return err
		}, gossip.ErrUnknownDriver},
		{"bad memory URL", func(t *testing.T) error {
			_, err := gossip.NewEventBus(&gossip.Config{Driver: "memory://a b%"})
			return err
		}, nil},
		{"option out of range", func(t *testing.T) error {
			_, err := gossip.NewEventBus(&gossip.Config{BufferSize: -1})
			return err
		}, gossip.ErrInvalidOption},
		{"invalid type", func(t *testing.T) error { return mem(t).Publish(ctx, gossip.NewEvent("bad..type", 1)) }, gossip.ErrInvalidEventType},
		{"empty type", func(t *testing.T) error { return mem(t).Publish(ctx, gossip.NewEvent("", 1)) }, gossip.ErrInvalidEventType},
		{"nil event", func(t *testing.T) error { return mem(t).Publish(ctx, nil) }, gossip.ErrInvalidEvent},
		{"bad ID", func(t *testing.T) error {
			return mem(t).Publish(ctx, &gossip.Event{ID: "a b\x00", Type: "a"})
		}, gossip.ErrInvalidEvent},
		{"invalid pattern", func(t *testing.T) error {
			_, err := mem(t).Subscribe("a.>.b", nop)
			return err
		}, gossip.ErrInvalidEventType},
		{"invalid group", func(t *testing.T) error {
			_, err := mem(t).Subscribe("a", nop, gossip.Group("a b"))
			return err
		}, gossip.ErrInvalidEventType},
		{"workers out of range", func(t *testing.T) error {
			_, err := mem(t).Subscribe("a", nop, gossip.Workers(-1))
			return err
		}, gossip.ErrInvalidOption},
		{"transport refuses groups, wrapped", func(t *testing.T) error {
			b := failing(t)
			_, err := b.Subscribe("a", nop, gossip.Group("g"))
			_ = b.Shutdown(ctx)
			return err
		}, gossip.ErrGroupsUnsupported},
		{"transport refuses groups, bare", func(t *testing.T) error {
			_, err := bare(t).Subscribe("a", nop, gossip.Group("g"))
			return err
		}, gossip.ErrGroupsUnsupported},
		{"transport fails to close", func(t *testing.T) error { return failing(t).Shutdown(ctx) }, driver.ErrSubscriptionClosed},
		{"closed bus", func(t *testing.T) error {
			b, err := gossip.NewEventBus(nil)
			require.NoError(t, err)
			require.NoError(t, b.Shutdown(ctx))
			return b.Publish(ctx, gossip.NewEvent("a", 1))
		}, gossip.ErrClosed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			require.Error(t, err)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "gossip: "), "%q does not start with the prefix", msg)
			assert.NotContains(t, msg, "gossip: gossip:")
			// The transport's own words may name a sentinel inside them:
			// "gossip:" may come again there, never twice in a row.
			if !strings.HasSuffix(tc.name, ", wrapped") {
				assert.Equal(t, 1, strings.Count(msg, "gossip:"), "%q repeats the prefix", msg)
			}
			if tc.is != nil {
				assert.True(t, errors.Is(err, tc.is), "%q is not %v", msg, tc.is)
			}
		})
	}
}
