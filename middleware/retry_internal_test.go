package middleware

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRetryZeroValueHasDocumentedDefaults(t *testing.T) {
	r := Retry{}.withDefaults()
	assert.Equal(t, 3, r.MaxRetries)
	assert.Equal(t, 100*time.Millisecond, r.InitialInterval)
	assert.Equal(t, 10*time.Second, r.MaxInterval)
	assert.Equal(t, 2.0, r.Multiplier)
	assert.Equal(t, 0.2, r.RandomizationFactor)
}

func TestRetryIntervalsGrowByMultiplierUpToMaxInterval(t *testing.T) {
	r := Retry{InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, Multiplier: 3}.withDefaults()
	var got []time.Duration
	for d, i := r.InitialInterval, 0; i < 5; d, i = r.next(d), i+1 {
		got = append(got, d)
	}
	assert.Equal(t, []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond, time.Second, time.Second}, got)
}

func TestRetryJitterSpreadsWithinFactorAndMaxInterval(t *testing.T) {
	for _, tc := range []struct {
		name     string
		retry    Retry
		d        time.Duration
		min, max time.Duration
	}{
		{"default ±20%", Retry{}, time.Second, 800 * time.Millisecond, 1200 * time.Millisecond},
		{"no jitter", Retry{RandomizationFactor: -1}, time.Second, time.Second, time.Second},
		{"capped at MaxInterval", Retry{MaxInterval: time.Second, RandomizationFactor: 0.5}, time.Second, 500 * time.Millisecond, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.retry.withDefaults()
			lo, hi := time.Duration(1<<62), time.Duration(0)
			for range 1000 {
				j := r.jitter(tc.d)
				lo, hi = min(lo, j), max(hi, j)
			}
			assert.GreaterOrEqual(t, lo, tc.min)
			assert.LessOrEqual(t, hi, tc.max)
			if tc.min != tc.max {
				assert.NotEqual(t, lo, hi, "waits are spread")
			}
		})
	}
}
