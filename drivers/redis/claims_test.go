package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/drivertest"
)

// The claim store keeps one key per claim under the bus's prefix: the owner
// with the lease as expiry, then "done" with the retention as expiry.
func TestClaimsKeysUnderPrefix(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	bus, err := gossip.NewEventBus(&gossip.Config{Driver: withParams(testURL, "prefix", ns), Logger: discard})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bus.Shutdown(context.Background())) })
	ctx := context.Background()
	st, err := bus.Claims(ctx, "orders", time.Hour)
	require.NoError(t, err)
	state, err := st.Claim(ctx, "o-1", "owner-a", time.Minute)
	require.NoError(t, err)
	require.Equal(t, gossip.Claimed, state)

	c := newClient(t, testURL)
	key := ns + ":claims:orders:o-1"
	assert.Equal(t, "c:owner-a", c.Get(ctx, key).Val())
	ttl := c.PTTL(ctx, key).Val()
	assert.True(t, ttl > 0 && ttl <= time.Minute, "the lease is the key's expiry: %v", ttl)

	require.NoError(t, st.Complete(ctx, "o-1", "owner-a"))
	assert.Equal(t, "d:owner-a", c.Get(ctx, key).Val())
	ttl = c.PTTL(ctx, key).Val()
	assert.True(t, ttl > time.Minute && ttl <= time.Hour, "the retention is the done key's expiry: %v", ttl)
}

// A Redis that goes away fails the deliveries that need a claim.
func TestClaimStoreDownFailsDelivery(t *testing.T) {
	requireRedis(t) // a redis-server of our own, besides
	port := freePort(nil)
	srv, err := launch(t.TempDir(), port)
	if err != nil {
		t.Skipf("cannot start a redis-server of the test's own: %v", err)
	}
	defer srv.kill()
	bus, err := gossip.NewEventBus(&gossip.Config{Driver: "redis://127.0.0.1:" + itoa(port) + "/0?max_retries=1", Logger: discard})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = bus.Shutdown(ctx) // the server is gone
	})
	st, err := bus.Claims(context.Background(), "down", time.Minute)
	require.NoError(t, err)
	drivertest.ClaimStoreDown(t, st, srv.kill)
}
