package middleware

import (
	"context"

	"github.com/gossipbus/gossip/gossip"
)

// SetMetadata returns publish middleware that sets metadata key to value on
// every published event that has no such key, such as a service version
// every consumer can read. An event that already has the key keeps its own
// value. The key is set on the caller's event itself, as Publish fills its
// ID and Source. SetMetadata panics if key is empty.
func SetMetadata(key, value string) gossip.PublishMiddleware {
	if key == "" {
		panic("middleware: SetMetadata with an empty key")
	}
	return func(next gossip.PublishFunc) gossip.PublishFunc {
		return func(ctx context.Context, events []*gossip.Event) error {
			for _, e := range events {
				if e == nil {
					continue // Publish reports it
				}
				if _, ok := e.Metadata[key]; !ok {
					e.WithMetadata(key, value)
				}
			}
			return next(ctx, events)
		}
	}
}
