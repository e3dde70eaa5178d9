package gossip

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gossipbus/gossip/gossip/driver"
)

// The errors gossip returns; test for them with errors.Is.
var (
	// ErrClosed is returned by Publish and Subscribe after Shutdown.
	ErrClosed = errors.New("gossip: event bus is closed")
	// ErrInvalidEventType wraps errors for malformed event types and
	// patterns; nothing is sent.
	ErrInvalidEventType = driver.ErrInvalidType
	// ErrInvalidEvent wraps other errors in an event given to Publish (nil
	// event, missing ID, bad metadata); nothing is sent.
	ErrInvalidEvent = errors.New("gossip: invalid event")
	// ErrEventTooLarge is returned when an encoded event exceeds
	// Config.MaxEventSize; nothing is sent.
	ErrEventTooLarge = errors.New("gossip: event too large")
	// ErrUnknownDriver is returned by NewEventBus for a driver name or URL
	// scheme nothing registered; the message lists what is registered.
	ErrUnknownDriver = driver.ErrUnknownDriver
	// ErrGroupsUnsupported is returned by Subscribe with Group on a
	// transport without consumer groups (Redis Pub/Sub).
	ErrGroupsUnsupported = driver.ErrGroupsUnsupported
	// ErrDecode is wrapped by every DecodeError, and by the reason of a dead
	// letter made of bytes on the wire that are not a readable event.
	ErrDecode = driver.ErrUnreadable
	// ErrInvalidOption is returned by NewEventBus and Subscribe for an
	// option outside its documented range.
	ErrInvalidOption = errors.New("gossip: invalid option")
	// ErrPoison is the reason of a dead letter made before any handler ran
	// because the transport had delivered the event more than MaxDeliveries
	// times without an ack: consumers died or stalled on it.
	ErrPoison = errors.New("gossip: poison event")
	// ErrPermanent is wrapped by errors made with Permanent.
	ErrPermanent = errors.New("gossip: permanent failure")
)

// Permanent marks a handler error that must not be retried: the event is
// dead-lettered at once. errors.Is(Permanent(err), err) holds, and so does
// errors.Is(Permanent(err), ErrPermanent). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	if IsPermanent(err) {
		return err
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was made by
// Permanent (or is a DecodeError: data that cannot be decoded now will not
// decode on a retry either).
func IsPermanent(err error) bool {
	return errors.Is(err, ErrPermanent) || errors.Is(err, ErrDecode)
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() []error {
	return []error{p.err, ErrPermanent}
}

// DecodeError says an event's data could not be decoded into the type a
// handler asked for. It is permanent: the event is dead-lettered with it.
type DecodeError struct {
	EventID string
	Type    EventType
	Err     error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("gossip: cannot decode data of event %s (%s): %v", e.EventID, e.Type, e.Err)
}

func (e *DecodeError) Unwrap() []error { return []error{e.Err, ErrDecode} }

// PanicError is what the bus (and middleware.Recovery) make of a handler
// panic: an error, never an ack, carrying the value and the stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("gossip: handler panicked: %v", p.Value) }

// Unwrap returns the panic value when it is an error.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// opError is what the bus makes of a transport error in one operation: the
// "gossip: " prefix once, the operation, then the transport's own words (a
// transport error that starts with "gossip: " too loses that copy).
// errors.Is and errors.As see through it.
type opError struct {
	op  string // "subscribe orders.>", "open nats://…", "close transport"
	err error
}

func (e *opError) Error() string {
	return "gossip: " + e.op + ": " + strings.TrimPrefix(e.err.Error(), "gossip: ")
}

func (e *opError) Unwrap() error { return e.err }

func errUnknownContentType(ct string) error {
	return fmt.Errorf("no codec for content type %q", ct)
}
