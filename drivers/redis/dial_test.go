package redis_test

import (
	"testing"
	"time"

	"github.com/gossipbus/gossip/internal/testnet"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// The whole open (dial, handshake, first command) ends within
// Config.DialTimeout, or the URL's dial_timeout when shorter, against a
// server that accepts and never answers; the error names the address and
// not the password.
func TestOpenIsBoundedByDialTimeout(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		dialTimeout time.Duration
	}{
		{"Config.DialTimeout", "", time.Second},
		{"dial_timeout", "?dial_timeout=1s", 30 * time.Second},
		{"pubsub", "?mode=pubsub", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := testnet.SilentServer(t)
			start := time.Now()
			_, err := gossip.NewEventBus(&gossip.Config{
				Driver:      "redis://app:TOPSECRET-pw@" + addr + "/0" + tc.query,
				DialTimeout: tc.dialTimeout, Logger: discard,
			})
			took := time.Since(start)
			require.Error(t, err)
			assert.Less(t, took, 2500*time.Millisecond, "open took %v", took) // 5 s before the fix; slack for a loaded machine
			assert.Contains(t, err.Error(), addr)
			assert.NotContains(t, err.Error(), "TOPSECRET")
		})
	}
}
