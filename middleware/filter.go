package middleware

import (
	"context"

	"github.com/gossipbus/gossip/gossip"
)

// Predicate reports whether an event should reach the handler.
type Predicate func(*gossip.Event) bool

// Filter returns middleware that calls the handler only for events pred
// accepts. The others are acknowledged without calling the handler: Filter
// returns nil for them, so they are neither redelivered nor dead-lettered.
// Filter panics if pred is nil.
func Filter(pred Predicate) gossip.Middleware {
	if pred == nil {
		panic("middleware: Filter with a nil Predicate")
	}
	return func(h gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error {
			if !pred(e) {
				return nil
			}
			return h(ctx, e)
		}
	}
}

// HasMetadata accepts events whose metadata holds key with exactly value.
func HasMetadata(key, value string) Predicate {
	return func(e *gossip.Event) bool {
		v, ok := e.Metadata[key]
		return ok && v == value
	}
}

// MetadataExists accepts events whose metadata holds key, whatever its value.
func MetadataExists(key string) Predicate {
	return func(e *gossip.Event) bool {
		_, ok := e.Metadata[key]
		return ok
	}
}

// TypeMatches accepts events whose type matches pattern, which may use the
// wildcards of Subscribe: "*" for one token and ">" for the rest.
func TypeMatches(pattern gossip.EventType) Predicate {
	return func(e *gossip.Event) bool { return e.Type.Matches(pattern) }
}

// SourceIs accepts events published by source (Event.Source).
func SourceIs(source string) Predicate {
	return func(e *gossip.Event) bool { return e.Source == source }
}

// And accepts events every one of preds accepts; And() accepts all events.
func And(preds ...Predicate) Predicate {
	return func(e *gossip.Event) bool {
		for _, p := range preds {
			if !p(e) {
				return false
			}
		}
		return true
	}
}

// Or accepts events at least one of preds accepts; Or() accepts none.
func Or(preds ...Predicate) Predicate {
	return func(e *gossip.Event) bool {
		for _, p := range preds {
			if p(e) {
				return true
			}
		}
		return false
	}
}

// Not accepts the events p rejects.
func Not(p Predicate) Predicate {
	return func(e *gossip.Event) bool { return !p(e) }
}
