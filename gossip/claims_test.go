package gossip_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/internal/testdriver"
)

func TestClaimsOnATransportWithoutAStore(t *testing.T) {
	b, err := gossip.NewEventBus(&gossip.Config{Conn: &testdriver.Conn{}})
	require.NoError(t, err)
	defer b.Shutdown(context.Background())
	_, err = b.Claims(context.Background(), "orders", time.Hour)
	require.ErrorIs(t, err, gossip.ErrClaimsUnsupported)
	assert.Contains(t, err.Error(), "test", "the error names the transport")
}

func TestClaimsArgumentsChecked(t *testing.T) {
	b, err := gossip.NewEventBus(&gossip.Config{})
	require.NoError(t, err)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		retention time.Duration
	}{
		{"", time.Hour}, {"a.b", time.Hour}, {"ключ", time.Hour}, {strings.Repeat("n", 65), time.Hour},
		{"ok", 0}, {"ok", -time.Second}, {"ok", 11 * 365 * 24 * time.Hour},
	} {
		_, err := b.Claims(ctx, tc.name, tc.retention)
		assert.ErrorIs(t, err, gossip.ErrInvalidOption, "Claims(%q, %v)", tc.name, tc.retention)
	}
	st, err := b.Claims(ctx, "ok-name_1", time.Minute)
	require.NoError(t, err)
	_, err = st.Claim(ctx, "", "owner", time.Second)
	assert.ErrorIs(t, err, gossip.ErrInvalidOption, "empty key")
	_, err = st.Claim(ctx, strings.Repeat("k", 1025), "owner", time.Second)
	assert.ErrorIs(t, err, gossip.ErrInvalidOption, "key over 1024 bytes")
	_, err = st.Claim(ctx, "k", "", time.Second)
	assert.ErrorIs(t, err, gossip.ErrInvalidOption, "empty owner")
	_, err = st.Claim(ctx, "k", "owner", 0)
	assert.ErrorIs(t, err, gossip.ErrInvalidOption, "no lease")
	assert.ErrorIs(t, st.Extend(ctx, "k", "owner", 2*time.Minute), gossip.ErrInvalidOption, "a lease over the retention")
	assert.ErrorIs(t, st.Complete(ctx, "", "owner"), gossip.ErrInvalidOption)
	assert.ErrorIs(t, st.Release(ctx, "k", ""), gossip.ErrInvalidOption)

	require.NoError(t, b.Shutdown(ctx))
	_, err = b.Claims(ctx, "ok", time.Minute)
	assert.ErrorIs(t, err, gossip.ErrClosed)
}
