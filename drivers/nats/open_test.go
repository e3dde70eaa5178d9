package nats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gossipbus/gossip/internal/testnet"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	natsdriver "github.com/gossipbus/gossip/drivers/nats"
	"github.com/gossipbus/gossip/gossip"
)

// The open's deadline bounds the whole open: three servers that accept and
// never answer take about DialTimeout together, not one each (nor three
// tries of three), and the error names them without the password.
func TestDialTimeoutBoundsTheWholeOpen(t *testing.T) {
	a, b, c := testnet.SilentServer(t), testnet.SilentServer(t), testnet.SilentServer(t)
	dsn := "nats://u:TOPSECRET%2Fpw@" + a + "," + b + "," + c
	start := time.Now()
	_, err := gossip.NewEventBus(&gossip.Config{Driver: dsn, DialTimeout: time.Second, Logger: quiet})
	took := time.Since(start)
	require.Error(t, err)
	assert.Less(t, took, 2500*time.Millisecond, "the open took %v", took) // 3 s before the fix; slack for a loaded machine
	for _, addr := range []string{a, b, c} {
		assert.Contains(t, err.Error(), addr)
	}
	assert.NotContains(t, err.Error(), "TOPSECRET")
}

// What can be checked at open is: a numeric parameter out of its range
// fails Open with an error naming it and its range, and so does a stream
// the server cannot make (replicas=3 on a single server).
func TestParametersAreCheckedAtOpen(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"replicas=3", "replicas"},
		{"replicas=0", "replicas=0 is out of range: want 1 to 5"},
		{"replicas=6", "replicas=6 is out of range"},
		{"max_age=-1h", "max_age=-1h0m0s is out of range"},
		{"max_bytes=0", "max_bytes=0 is out of range"},
		{"max_bytes=-2", "max_bytes=-2 is out of range"},
		{"max_msgs=0", "max_msgs=0 is out of range"},
		{"duplicates=0s", "duplicates=0s is out of range"},
		{"duplicates=2h&max_age=1h", "duplicates=2h0m0s is out of range: want at most max_age (1h0m0s)"},
		{"max_ack_pending=-5", "max_ack_pending=-5 is out of range"},
		{"inactive_threshold=-1s", "inactive_threshold=-1s is out of range"},
		{"pending_msgs=0", "pending_msgs=0 is out of range"},
		{"pending_bytes=0", "pending_bytes=0 is out of range"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			dsn := shared.URL() + "?prefix=" + prefix(t) + "&" + tc.query
			_, err := gossip.NewEventBus(&gossip.Config{Driver: dsn, DialTimeout: 5 * time.Second, Logger: quiet})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// A max_age shorter than the default duplicate window shortens it.
	conn, err := natsdriver.Connect(context.Background(), shared.URL()+"?storage=memory&max_age=30s&prefix="+prefix(t))
	require.NoError(t, err)
	require.NoError(t, conn.Close(context.Background()))

	_, err = natsdriver.Connect(context.Background(), shared.URL(), natsdriver.Replicas(-1))
	assert.ErrorIs(t, err, natsdriver.ErrBadOption)
	assert.True(t, strings.Contains(err.Error(), "replicas=-1"), err.Error())
}
