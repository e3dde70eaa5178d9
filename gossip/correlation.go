package gossip

import "context"

// The metadata keys of correlation and causation: the names of the
// CloudEvents correlation extension, so other CloudEvents consumers read
// them as extension attributes.
const (
	// MetaCorrelationID names the unit of work an event belongs to: the ID
	// of the first event of a chain, carried by every event handlers
	// publish on its account.
	MetaCorrelationID = "correlationid"
	// MetaCausationID is the ID of the event whose handler published this
	// one.
	MetaCausationID = "causationid"
)

// CorrelationID is the unit of work e belongs to: its correlationid
// metadata, or its own ID when it has none (an event nobody's handler
// published starts a chain of its own).
func (e *Event) CorrelationID() string {
	if c, ok := e.Metadata[MetaCorrelationID]; ok && c != "" {
		return c
	}
	return e.ID
}

// CausationID is the ID of the event whose handling published e (its
// causationid metadata), "" when it was not published by a handler.
func (e *Event) CausationID() string { return e.Metadata[MetaCausationID] }

// handledKey marks a handler's context with the event it handles, which
// Publish reads to correlate what the handler publishes.
type handledKey struct{}

// handlerContext is the context a handler runs with: the subscription's,
// plus the event it handles. It lives in the same allocation as the
// delivered event.
type handlerContext struct {
	context.Context
	e *Event
}

func (c *handlerContext) Value(key any) any {
	if _, ok := key.(handledKey); ok {
		return c.e
	}
	return c.Context.Value(key)
}

// deliveredEvent is a delivered event and its handler's context, made in
// one allocation.
type deliveredEvent struct {
	Event
	ctx handlerContext
}

// correlate stamps events published with a handler's ctx with the handled
// event's correlation and its ID as their cause, unless they have their
// own. An event republished as it is (same ID) is left alone.
func correlate(ctx context.Context, events []*Event) {
	h, ok := ctx.Value(handledKey{}).(*Event)
	if !ok {
		return
	}
	var corr string
	for _, e := range events {
		if e == nil || e == h || (e.ID != "" && e.ID == h.ID) {
			continue
		}
		if _, ok := e.Metadata[MetaCorrelationID]; !ok {
			if corr == "" {
				corr = h.CorrelationID()
			}
			e.WithMetadata(MetaCorrelationID, corr)
		}
		if _, ok := e.Metadata[MetaCausationID]; !ok {
			e.WithMetadata(MetaCausationID, h.ID)
		}
	}
}
