package gossip

import (
	"context"
	"fmt"
)

// Hooks for packages that store events to publish them later (the
// transactional outbox): check and encode an event exactly as Publish
// would, without publishing it, and publish stored bytes as they are.

// PrepareEvent checks e by the rules Publish applies (event type, ID,
// Timestamp, Source, metadata) and fills an empty ID, a zero Timestamp and
// an empty Source (with source) as Publish does. An invalid event is an
// error wrapping ErrInvalidEventType or ErrInvalidEvent. The size limit is
// not checked: it belongs to the bus that publishes the event.
func PrepareEvent(e *Event, source string) error {
	b := &EventBus{cfg: Config{Source: source}}
	return b.prepare(e)
}

// EncodeData returns e's payload as codec c (nil: JSON) puts it on the
// wire, with its content type. A json.RawMessage payload and a delivered
// event's own bytes pass through unchanged, as they do in Publish. A
// payload the codec cannot encode is an error wrapping ErrInvalidEvent.
func EncodeData(c Codec, e *Event) (data []byte, contentType string, err error) {
	if e.raw != nil && e.Data == nil {
		return e.raw, e.contentType, nil
	}
	data, contentType, err = newCodecSet(c, nil).encode(e.Data)
	if err != nil {
		return nil, "", fmt.Errorf("%w %s (%s): encode data: %v", ErrInvalidEvent, e.ID, e.Type, err)
	}
	return data, contentType, nil
}

// SetEncodedData makes data, already encoded with content type
// contentType, e's payload, and returns e: Publish sends the bytes as they
// are on every transport (the memory transport included), and handlers
// read them with Decode as they would a payload the publisher encoded. It
// clears e.Data. A nil data leaves e without a payload.
func (e *Event) SetEncodedData(data []byte, contentType string) *Event {
	e.Data = nil
	e.raw, e.contentType = data, contentType
	return e
}

// Correlate stamps events as Publish does when ctx is a handler's (or
// derived from one): each event without its own gets the handled event's
// correlation ID and that event's ID as its causation ID. With any other
// ctx it does nothing. A package that stores events to publish them later
// calls it where Publish would have.
func Correlate(ctx context.Context, events ...*Event) { correlate(ctx, events) }
