package gossip

import (
	"context"
)

// Handler handles one delivered event. Returning nil acknowledges it; an
// error makes the bus redeliver it with backoff, up to MaxDeliveries
// attempts; an error made with Permanent dead-letters it at once.
type Handler func(ctx context.Context, e *Event) error

// Middleware wraps a Handler, as net/http middleware wraps an http.Handler.
type Middleware func(Handler) Handler

// Chain composes middleware: the first runs outermost, so
// Chain(a, b)(h) runs a, then b, then h.
func Chain(m ...Middleware) Middleware {
	return func(h Handler) Handler {
		for i := len(m) - 1; i >= 0; i-- {
			h = m[i](h)
		}
		return h
	}
}

// Typed adapts a handler of payloads of type T. It hands h the event's data
// as a T on every transport; data that does not decode into a T is a
// permanent error (a DecodeError), so the event is dead-lettered rather than
// retried.
func Typed[T any](h func(ctx context.Context, e *Event, data T) error) Handler {
	return func(ctx context.Context, e *Event) error {
		if e.raw == nil {
			switch d := e.Data.(type) {
			case T: // in process, the publisher's value as it is
				return h(ctx, e, d)
			case *T:
				if d != nil {
					return h(ctx, e, *d)
				}
			}
		}
		v, err := decodeAs[T](e)
		if err != nil {
			return err
		}
		return h(ctx, e, v)
	}
}

// decodeAs decodes e's data straight into a T. It is apart from Typed so
// that the T it decodes into is allocated only here, not for the events
// Typed hands over without decoding.
func decodeAs[T any](e *Event) (T, error) {
	var v T
	err := e.Decode(&v)
	return v, err
}

// PublishFunc publishes a batch of events; it is the shape publish-side
// middleware wraps.
type PublishFunc func(ctx context.Context, events []*Event) error

// PublishMiddleware wraps publishing, to inject headers (trace context) or
// measure it. It sees every event before it is validated and encoded, and
// may set metadata on them.
type PublishMiddleware func(PublishFunc) PublishFunc

func recoverHandler(h Handler) Handler {
	return func(ctx context.Context, e *Event) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = newPanicError(r)
			}
		}()
		return h(ctx, e)
	}
}

func newPanicError(r any) *PanicError {
	return &PanicError{Value: r, Stack: stack()}
}
