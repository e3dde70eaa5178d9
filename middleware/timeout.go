package middleware

import (
	"context"
	"time"

	"github.com/gossipbus/gossip/gossip"
)

// Timeout returns middleware that gives the handler a context whose
// deadline is d from the call, and returns whatever the handler returns. It
// does not abandon a handler that overruns: it starts no goroutine and calls
// the handler in the caller's, so a handler must honour ctx (pass it to
// every call that blocks, or watch ctx.Done()) for the deadline to bind. A
// handler that gives up should return ctx's error, so the event is
// redelivered rather than acknowledged. A d of zero or less sets no
// deadline.
func Timeout(d time.Duration) gossip.Middleware {
	return func(h gossip.Handler) gossip.Handler {
		if d <= 0 {
			return h
		}
		return func(ctx context.Context, e *gossip.Event) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return h(ctx, e)
		}
	}
}
