// Package middleware holds handler middleware for gossip event buses:
// Recovery, Logging, Retry, Timeout, Filter and Idempotent, and the
// publish-side SetMetadata.
//
// A gossip.Middleware wraps a gossip.Handler as net/http middleware wraps an
// http.Handler. Install middleware on every subscription of a bus with
// gossip.Config.Middleware or EventBus.Use, or on one subscription with
// gossip.WithMiddleware. The first middleware runs outermost, so this order
// logs every outcome, panics included, and gives each in-process attempt its
// own deadline (a panic is not retried in process; the bus redelivers it):
//
//	bus.Use(
//		middleware.Logging(logger),
//		middleware.Recovery(),
//		middleware.Retry{MaxRetries: 2}.Middleware(),
//		middleware.Timeout(5*time.Second),
//	)
//
// Every middleware here keeps the bus's contract: a handler error, a panic
// or a timeout is returned as an error, so the event is redelivered or
// dead-lettered, never acknowledged as done. Two acknowledge without running
// the handler: Filter, the events it is told to skip, and Idempotent, the
// events whose key a delivery already handled (see docs/guarantees.md).
package middleware
