package memory_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/drivers/memory"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// A buffer the process cannot hold is an error, never an allocation: from
// NewEventBus through gossip, and from Subscribe when the driver is used
// directly.
func TestHugeBufferSizeIsAnError(t *testing.T) {
	_, err := gossip.NewEventBus(&gossip.Config{Driver: "memory", BufferSize: 1 << 40})
	require.ErrorIs(t, err, gossip.ErrInvalidOption)

	c := memory.NewBroker().Conn()
	defer c.Close(context.Background())
	for _, group := range []string{"", "g"} {
		_, err := c.Subscribe(context.Background(), driver.SubscribeSpec{Pattern: "a.b", Group: group, BufferSize: 1 << 40, Workers: 1, MaxDeliveries: 1})
		require.Error(t, err, "group %q", group)
		assert.Contains(t, err.Error(), "BufferSize 1099511627776 is over 1000000")
	}
}
