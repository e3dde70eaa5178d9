package driver

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the one retry-delay policy of gossip and its drivers: in-process
// redelivery, the Retry middleware, dead-letter publishing and every
// reconnect loop. The delay starts at Initial and grows by Multiplier per
// attempt up to Max; each delay is spread at random by ±Jitter of itself and
// never exceeds Max. The zero value waits 100ms, 200ms, 400ms ... up to 10s,
// ±20%.
type Backoff struct {
	// Initial is the delay after the first failure (default 100ms).
	Initial time.Duration
	// Max caps every delay, jitter included (default 10s).
	Max time.Duration
	// Multiplier grows the delay per attempt (default 2 when less than 1;
	// 1 keeps it constant).
	Multiplier float64
	// Jitter spreads each delay within ±Jitter of it: 0.2 waits between 80%
	// and 120% (default 0.2 when zero; negative for none; at most 1).
	Jitter float64
}

// WithDefaults returns b with its zero fields set to their defaults.
func (b Backoff) WithDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	b.Initial = min(b.Initial, b.Max)
	if b.Multiplier < 1 {
		b.Multiplier = 2
	}
	switch {
	case b.Jitter == 0:
		b.Jitter = 0.2
	case b.Jitter < 0:
		b.Jitter = 0
	case b.Jitter > 1:
		b.Jitter = 1
	}
	return b
}

// Delay is the wait after the attempt-th failure (1 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.WithDefaults()
	d := float64(b.Initial)
	for i := 1; i < attempt && d < float64(b.Max) && b.Multiplier > 1; i++ {
		d *= b.Multiplier
	}
	d = min(d, float64(b.Max))
	d += b.Jitter * d * (2*rand.Float64() - 1)
	return min(time.Duration(d), b.Max)
}

// Wait sleeps for Delay(attempt); it reports false, at once, if ctx ends
// first.
func (b Backoff) Wait(ctx context.Context, attempt int) bool {
	if ctx.Err() != nil {
		return false
	}
	t := time.NewTimer(b.Delay(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
