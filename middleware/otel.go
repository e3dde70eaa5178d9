package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/gossipbus/gossip/gossip"
)

// Attribute keys gossip adds to the OpenTelemetry messaging conventions,
// which have no standard key for them.
const (
	// AttrDeliveryAttempt is the delivery attempt of a handled event,
	// starting at 1 (gossip.Event.Attempt).
	AttrDeliveryAttempt = attribute.Key("messaging.gossip.delivery.attempt")
	// AttrDeadLetterType is the event type a dead-lettered event is
	// published under (gossip.DeadLetterType), on the "dead_letter" span
	// event.
	AttrDeadLetterType = attribute.Key("messaging.gossip.dead_letter.type")
)

// The messaging.operation.name values gossip reports.
const (
	opSend    = "send"
	opProcess = "process"
)

// eventCarrier lets a propagator read and write an event's metadata. Set
// goes through WithMetadata, which copies metadata shared with other
// deliveries before writing.
type eventCarrier struct{ e *gossip.Event }

func (c eventCarrier) Get(key string) string { return c.e.Metadata[key] }

func (c eventCarrier) Set(key, value string) { c.e.WithMetadata(key, value) }

func (c eventCarrier) Keys() []string {
	keys := make([]string, 0, len(c.e.Metadata))
	for k := range c.e.Metadata {
		keys = append(keys, k)
	}
	return keys
}

// isFinal reports whether the bus dead-letters e after its handler returned
// err, by the rule the bus itself applies.
func isFinal(e *gossip.Event, err error) bool {
	return err != nil && (gossip.IsPermanent(err) || e.Attempt() >= e.MaxDeliveries())
}

// errorType is the low-cardinality error.type of err: "timeout" and
// "canceled" for context errors, "panic" for a handler panic, "decode" for
// data that does not decode, the ErrorType() string of an error that has
// one, else the Go type of the error (with the Permanent wrapper taken
// off), and "_OTHER" for errors.New and fmt.Errorf values, whose type says
// nothing.
func errorType(err error) string {
	var et interface{ ErrorType() string }
	var pe *gossip.PanicError
	switch {
	case errors.As(err, &et) && et.ErrorType() != "":
		return et.ErrorType()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &pe):
		return "panic"
	case errors.Is(err, gossip.ErrDecode):
		return "decode"
	}
	// Take off fmt.Errorf and Permanent wrappers, then name the type.
	for {
		switch reflect.TypeOf(err).String() {
		case "*fmt.wrapError", "*fmt.wrapErrors", "*gossip.permanentError":
		default:
			return typeName(err)
		}
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			if errs := u.Unwrap(); len(errs) > 0 {
				next = errs[0]
			}
		}
		if next == nil {
			return typeName(err)
		}
		err = next
	}
}

func typeName(err error) string {
	s := semconv.ErrorType(err).Value.AsString()
	switch s {
	case "*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors":
		return semconv.ErrorTypeOther.Value.AsString()
	}
	return s
}

// bodySize is the size of e's payload in bytes when it is known without
// encoding it: the bytes a wire transport delivered, or data a publisher
// passed as bytes or a string.
func bodySize(e *gossip.Event) (int, bool) {
	switch d := e.Data.(type) {
	case json.RawMessage:
		return len(d), true
	case []byte:
		return len(d), true
	case string:
		return len(d), true
	}
	return 0, false
}
