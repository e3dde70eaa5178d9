package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/drivers/nats/natsserver"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/drivertest"
)

// A claim store is a KV bucket named after the stream, with the retention
// as its TTL; keys are base64url-encoded.
func TestClaimsBucket(t *testing.T) {
	p := prefix(t)
	bus := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + p})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := bus.Claims(ctx, "orders", time.Hour)
	require.NoError(t, err)
	state, err := st.Claim(ctx, "o 1/✓", "owner-a", time.Minute)
	require.NoError(t, err)
	require.Equal(t, gossip.Claimed, state)

	nc, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), p+"_claims_orders") })
	kv, err := js.KeyValue(ctx, p+"_claims_orders")
	require.NoError(t, err)
	status, err := kv.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, time.Hour, status.TTL())
	keys, err := kv.ListKeys(ctx)
	require.NoError(t, err)
	var got []string
	for k := range keys.Keys() {
		got = append(got, k)
	}
	assert.Equal(t, []string{"byAxL-Kckw"}, got) // base64url("o 1/✓")
}

// Core mode uses JetStream for claims when the server has it, and says so
// clearly when it has not.
func TestClaimsCoreModeWithoutJetStream(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Options{Configure: func(o *server.Options) { o.JetStream = false }})
	require.NoError(t, err)
	defer srv.Shutdown()
	bus := newBus(t, gossip.Config{Driver: srv.URL() + "?mode=core"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = bus.Claims(ctx, "orders", time.Hour)
	require.ErrorIs(t, err, gossip.ErrClaimsUnsupported)
	assert.ErrorContains(t, err, "JetStream")
}

// A NATS server that goes away fails the deliveries that need a claim.
func TestClaimStoreDownFailsDelivery(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Options{})
	require.NoError(t, err)
	defer srv.Shutdown()
	bus := newBus(t, gossip.Config{Driver: srv.URL() + "?prefix=" + prefix(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := bus.Claims(ctx, "down", time.Minute)
	require.NoError(t, err)
	drivertest.ClaimStoreDown(t, st, srv.Shutdown)
}
