package middleware

import (
	"context"
	"fmt"
	"time"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// Retry re-runs a failing handler in process, waiting between attempts with
// exponential backoff and jitter. Its zero value retries 3 times after
// 100ms, 200ms and 400ms (each ±20%).
//
// The bus's own redelivery (gossip.MaxDeliveries, Config.RetryBackoff) is
// the usual way to retry: it frees the worker between attempts, counts
// attempts in Event.Attempt and dead-letters at the end. Retry is for short
// in-process retries of transient failures (a lock conflict, a brief network
// blip) that are not worth a redelivery; it holds a worker, and on durable
// transports the event's ack wait, while it waits. All its attempts are one
// delivery: Event.Attempt does not change between them.
type Retry struct {
	// MaxRetries is the number of retries after the first call (default 3
	// when zero; a negative value disables retries).
	MaxRetries int
	// InitialInterval is the wait before the first retry (default 100ms).
	InitialInterval time.Duration
	// MaxInterval caps every wait, jitter included (default 10s).
	MaxInterval time.Duration
	// Multiplier grows the wait after each retry (default 2 when zero or
	// less than 1; 1 keeps it constant).
	Multiplier float64
	// RandomizationFactor spreads each wait at random within ±factor of it:
	// 0.2 waits between 80% and 120% (default 0.2 when zero; a negative
	// value disables jitter; at most 1).
	RandomizationFactor float64
	// ShouldRetry, when set, decides which errors are retried; the others
	// are returned at once. Permanent errors (gossip.IsPermanent) are never
	// retried, whatever it says.
	ShouldRetry func(error) bool
	// OnRetry, when set, is called before each wait with the number of the
	// retry about to be made (1 for the first) and the error that caused
	// it.
	OnRetry func(ctx context.Context, e *gossip.Event, attempt int, err error)
}

// Middleware returns middleware that calls the handler and, while it fails
// with an error worth retrying, calls it again after a wait, up to
// MaxRetries times; then it returns the last error. If ctx ends during a
// wait it returns at once with an error wrapping both ctx's error and the
// handler's last error. The waits are gossip's one backoff (driver.Backoff).
func (r Retry) Middleware() gossip.Middleware {
	if r.MaxRetries == 0 {
		r.MaxRetries = 3
	}
	b := driver.Backoff{Initial: r.InitialInterval, Max: r.MaxInterval, Multiplier: r.Multiplier, Jitter: r.RandomizationFactor}
	return func(h gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error {
			err := h(ctx, e)
			for retry := 1; err != nil && retry <= r.MaxRetries; retry++ {
				if gossip.IsPermanent(err) || (r.ShouldRetry != nil && !r.ShouldRetry(err)) {
					return err
				}
				if r.OnRetry != nil {
					r.OnRetry(ctx, e, retry, err)
				}
				if !b.Wait(ctx, retry) {
					return fmt.Errorf("middleware: retry stopped: %w; last handler error: %w", ctx.Err(), err)
				}
				err = h(ctx, e)
			}
			return err
		}
	}
}
