package middleware

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/gossipbus/gossip/gossip"
)

// Recovery returns middleware that turns a panic in the handler into a
// *gossip.PanicError carrying the panic value and the goroutine's stack at
// the panic. A panicked event is never acknowledged: the error makes the bus
// redeliver it or dead-letter it like any other failure.
//
// The bus recovers panics around the whole middleware chain anyway; Recovery
// is for turning them into errors further in, so that middleware outside it
// (Logging, Retry, metrics) sees them as errors.
func Recovery() gossip.Middleware { return RecoveryWithLogger(nil) }

// RecoveryWithLogger is Recovery that also logs each panic at Error level
// on logger, with the event's id and type, the panic value and the stack. A
// nil logger logs nothing.
func RecoveryWithLogger(logger *slog.Logger) gossip.Middleware {
	return func(h gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) (err error) {
			returned := false
			defer func() {
				if returned {
					return
				}
				// A flag, not r != nil: panic(nil) must not pass for success
				// either, whatever GODEBUG=panicnil says.
				r := recover()
				pe := &gossip.PanicError{Value: r, Stack: debug.Stack()}
				if logger != nil {
					logger.LogAttrs(ctx, slog.LevelError, "gossip: handler panicked",
						slog.String("id", e.ID), slog.String("type", string(e.Type)),
						slog.Any("panic", r), slog.String("stack", string(pe.Stack)))
				}
				err = pe
			}()
			err = h(ctx, e)
			returned = true
			return err
		}
	}
}
