package gossip_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// A BufferSize that would allocate terabytes at Subscribe is an error from
// NewEventBus, not a process killed by the out-of-memory handler.
func TestHugeBufferSizeIsAnErrorNotAnOOM(t *testing.T) {
	_, err := gossip.NewEventBus(&gossip.Config{BufferSize: 1 << 40})
	require.ErrorIs(t, err, gossip.ErrInvalidOption)
	assert.Contains(t, err.Error(), "Config.BufferSize 1099511627776 is outside its range 1 to 1000000")
}

// Every numeric Config field: zero is the default, the ends of its range
// are accepted, one step beyond either end and negative values are
// ErrInvalidOption naming the field and the range.
func TestConfigRangesCheckedAtNewEventBus(t *testing.T) {
	type field struct {
		name   string
		set    func(c *gossip.Config, v int64)
		lo, hi int64
		unit   func(int64) string
	}
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	dur := func(v int64) string { return time.Duration(v).String() }
	fields := []field{
		{"Workers", func(c *gossip.Config, v int64) { c.Workers = int(v) }, 1, 10_000, num},
		{"BufferSize", func(c *gossip.Config, v int64) { c.BufferSize = int(v) }, 1, 1_000_000, num},
		{"MaxDeliveries", func(c *gossip.Config, v int64) { c.MaxDeliveries = int(v) }, 1, 1_000_000, num},
		{"MaxEventSize", func(c *gossip.Config, v int64) { c.MaxEventSize = int(v) }, 4 << 10, 64 << 20, num},
		{"RetryBackoff", func(c *gossip.Config, v int64) {
			c.RetryBackoff, c.MaxRetryBackoff = time.Duration(v), 24*time.Hour
		}, 1, int64(24 * time.Hour), dur},
		{"MaxRetryBackoff", func(c *gossip.Config, v int64) {
			c.RetryBackoff, c.MaxRetryBackoff = 1, time.Duration(v)
		}, 1, int64(24 * time.Hour), dur},
		{"AckWait", func(c *gossip.Config, v int64) { c.AckWait = time.Duration(v) }, int64(100 * time.Millisecond), int64(24 * time.Hour), dur},
		{"DialTimeout", func(c *gossip.Config, v int64) { c.DialTimeout = time.Duration(v) }, 1, int64(10 * time.Minute), dur},
	}
	open := func(f field, v int64) error {
		var c gossip.Config
		f.set(&c, v)
		b, err := gossip.NewEventBus(&c)
		if err == nil {
			require.NoError(t, b.Shutdown(context.Background()))
		}
		return err
	}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			for _, v := range []int64{0, f.lo, f.hi} {
				assert.NoError(t, open(f, v), "%s %s is within the range", f.name, f.unit(v))
			}
			for _, v := range []int64{-1, f.lo - 1, f.hi + 1, -f.hi} {
				if v == 0 {
					continue // the default
				}
				err := open(f, v)
				if assert.ErrorIs(t, err, gossip.ErrInvalidOption, "%s %s", f.name, f.unit(v)) {
					assert.Contains(t, err.Error(), "Config."+f.name+" "+f.unit(v)+" is outside its range "+f.unit(f.lo)+" to "+f.unit(f.hi))
				}
			}
		})
	}
}

// MaxRetryBackoff below RetryBackoff, both set, is an error; either alone
// takes the other's default or its own value.
func TestRetryBackoffOrder(t *testing.T) {
	_, err := gossip.NewEventBus(&gossip.Config{RetryBackoff: time.Second, MaxRetryBackoff: time.Millisecond})
	require.ErrorIs(t, err, gossip.ErrInvalidOption)
	assert.Contains(t, err.Error(), "Config.MaxRetryBackoff 1ms is below Config.RetryBackoff 1s")
	for _, c := range []gossip.Config{{RetryBackoff: time.Minute}, {MaxRetryBackoff: time.Millisecond}} {
		b, err := gossip.NewEventBus(&c)
		require.NoError(t, err, "%+v", c)
		require.NoError(t, b.Shutdown(context.Background()))
	}
}
