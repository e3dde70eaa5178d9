package driver_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/gossipbus/gossip/gossip/driver"
)

func TestBackoffZeroValueHasDocumentedDefaults(t *testing.T) {
	b := driver.Backoff{}.WithDefaults()
	assert.Equal(t, driver.Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.2}, b)
}

func TestBackoffGrowsByMultiplierUpToMax(t *testing.T) {
	b := driver.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 3, Jitter: -1}
	var got []time.Duration
	for attempt := 1; attempt <= 5; attempt++ {
		got = append(got, b.Delay(attempt))
	}
	assert.Equal(t, []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond, time.Second, time.Second}, got)
	assert.Equal(t, 50*time.Millisecond, driver.Backoff{Initial: 50 * time.Millisecond, Multiplier: 1, Jitter: -1}.Delay(1_000_000), "multiplier 1 is constant")
}

func TestBackoffJitterSpreadsWithinFactorAndMax(t *testing.T) {
	for _, tc := range []struct {
		name     string
		b        driver.Backoff
		min, max time.Duration
	}{
		{"default ±20%", driver.Backoff{Initial: time.Second}, 800 * time.Millisecond, 1200 * time.Millisecond},
		{"no jitter", driver.Backoff{Initial: time.Second, Jitter: -1}, time.Second, time.Second},
		{"capped at Max", driver.Backoff{Initial: time.Second, Max: time.Second, Jitter: 0.5}, 500 * time.Millisecond, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := time.Duration(1<<62), time.Duration(0)
			for range 1000 {
				d := tc.b.Delay(1)
				lo, hi = min(lo, d), max(hi, d)
			}
			assert.GreaterOrEqual(t, lo, tc.min)
			assert.LessOrEqual(t, hi, tc.max)
			if tc.min != tc.max {
				assert.NotEqual(t, lo, hi, "delays are spread")
			}
		})
	}
}

func TestBackoffWaitEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	assert.False(t, driver.Backoff{Initial: time.Hour, Max: time.Hour}.Wait(ctx, 1))
	assert.Less(t, time.Since(start), time.Second)
	assert.True(t, driver.Backoff{Initial: time.Millisecond, Max: time.Millisecond}.Wait(context.Background(), 3))
}
