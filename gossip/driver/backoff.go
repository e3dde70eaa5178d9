package driver

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the one retry-delay policy of gossip and its drivers: in-process
// redelivery, the Retry middleware, dead-letter publishing and every
// reconnect loop. The delay starts at Initial, doubles per attempt up to
// Max, and is spread by ±20% jitter so that many retries do not meet.
type Backoff struct {
	Initial time.Duration // the delay after the first failure (> 0)
	Max     time.Duration // the cap (>= Initial)
}

// Delay is the wait after the attempt-th failure (1 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	d := max(b.Initial, time.Millisecond)
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if b.Max > 0 {
		d = min(d, b.Max)
	}
	return d - d/5 + time.Duration(rand.Int64N(int64(d)/5*2+1))
}

// Wait sleeps for Delay(attempt); it reports false, at once, if ctx ends
// first.
func (b Backoff) Wait(ctx context.Context, attempt int) bool {
	t := time.NewTimer(b.Delay(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
