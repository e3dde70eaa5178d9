// Package driver defines the interfaces a gossip transport implements and the
// registry that gossip.NewEventBus opens transports through.
//
// It plays the part database/sql/driver plays for database/sql: users never
// touch it; transport authors implement Driver, Conn and Subscription and
// register the driver from an init function:
//
//	func init() { driver.Register("nats", natsDriver{}, "nats") }
//
// The gossip package owns everything that is the same on every transport:
// validation, encoding, worker pools, the handler chain, retry backoff,
// MaxDeliveries, poison detection, keep-alive, the close order and dead
// letters. A driver only moves messages, reports delivery counts and
// settles what gossip tells it. Capabilities a transport may lack are small
// optional interfaces (Acker, Nacker, KeepAliver, Releaser, ValueCarrier,
// DataCopier) found by type assertion; gossip fills the gap when they are
// missing.
//
// Drivers must not import package gossip.
package driver

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"
)

// Message is one event as a transport carries it. The attribute names follow
// CloudEvents 1.0: ID, Type, Source and Time are the required attributes,
// ContentType is datacontenttype, and Metadata holds everything else
// (extensions, W3C trace context, user metadata).
type Message struct {
	// ID is 1 to 256 bytes of valid UTF-8 without control characters (gossip
	// refuses other IDs at Publish). A driver carries it byte for byte,
	// escaping on the wire what a header cannot hold, so that distinct IDs
	// stay distinct (a transport deduplicating by ID must see them so).
	ID          string
	Type        string
	Source      string
	Time        time.Time
	ContentType string

	// Data is the encoded payload. It is nil when the Conn is a
	// ValueCarrier: then Value holds the publisher's value as it was passed.
	Data  []byte
	Value any

	// Metadata travels as transport headers. Keys are 1 to 256 bytes of
	// valid UTF-8 without control characters, case-sensitive; values are
	// any valid UTF-8 (CR, LF, tabs, outer spaces, empty). gossip refuses
	// anything else at Publish; a driver must round-trip everything else
	// byte for byte (escaping what its wire cannot carry as is). Delivered
	// messages may hold what another producer wrote, outside the rule.
	Metadata map[string]string
}

// Size is the number of bytes the message occupies on a wire, as the size
// limit counts them: data plus attribute and metadata keys and values.
func (m *Message) Size() int {
	n := len(m.Data) + len(m.ID) + len(m.Type) + len(m.Source) + len(m.ContentType) + 32
	for k, v := range m.Metadata {
		n += len(k) + len(v)
	}
	return n
}

// MediaType is content type ct without its parameters, in lower case:
// "application/json" for "Application/JSON; charset=utf-8".
func MediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// Delivery is a message handed to a subscription, once per delivery attempt.
type Delivery struct {
	*Message

	// Attempt counts deliveries of this message to this subscription's
	// group, starting at 1. Durable drivers take it from the server.
	Attempt int

	// Err is set when the driver received something it could not turn into
	// a Message (no CloudEvents attributes, a corrupt entry: wrap
	// ErrUnreadable), or has given up on for a reason of its own. gossip
	// dead-letters such a delivery at once with Err as the reason, then acks
	// it. Message is still set, with whatever could be read (at least Type
	// when the subject or stream names it, and Data holding the raw body).
	Err error

	// Token is private to the driver: what it needs to ack or nack the
	// delivery (a stream entry ID, a JetStream message, ...).
	Token any
}

// Options are what gossip tells a driver when it opens a connection.
type Options struct {
	// Source is the publishing service's name (gossip.Config.Source); drivers
	// use it to name consumers.
	Source string
	// Logger receives the driver's own diagnostics. Never nil.
	Logger *slog.Logger
}

// Driver opens connections. It is registered under a name and URL schemes.
type Driver interface {
	// Open connects to the transport named by dsn: the registered name alone
	// ("nats") or a URL with a registered scheme ("nats://a:4222,b:4222").
	// It must return within ctx's deadline; an unreachable server is an
	// error naming the address and never the password.
	Open(ctx context.Context, dsn string, opts Options) (Conn, error)
}

// Conn is an open connection to a transport. Its methods may be called
// concurrently.
type Conn interface {
	// Publish hands msgs to the transport and returns once it holds all of
	// them (JetStream PubAck, XADD reply, a place in a memory queue). A
	// driver sends a batch in one round trip where it can. When ctx ends
	// first, Publish returns ctx.Err(); some messages may then have been
	// stored. Publish never returns nil for a message it did not store.
	// Publish must not keep the msgs slice after it returns (gossip reuses
	// it); it may keep the Messages.
	Publish(ctx context.Context, msgs []*Message) error

	// Subscribe starts a subscription and returns once it is live: a message
	// published after Subscribe returns is delivered to it.
	Subscribe(ctx context.Context, spec SubscribeSpec) (Subscription, error)

	// Close releases the connection. gossip closes every subscription first.
	Close(ctx context.Context) error
}

// Start says where a new group begins reading.
type Start int

const (
	// StartNew: the group sees events published after it was first created.
	StartNew Start = iota
	// StartOldest: the group sees every event the transport still holds.
	StartOldest
)

// SubscribeSpec describes a subscription.
type SubscribeSpec struct {
	// Pattern is a validated event type or pattern: dot-separated tokens,
	// "*" for one token, ">" as the last token for one or more tokens.
	Pattern string
	// Group is empty for a broadcast listener (every subscription gets every
	// event, from now on). Otherwise members of the same Group and Pattern
	// share the events; durable drivers keep the group's position.
	Group string
	// BufferSize bounds the deliveries fetched ahead of the handlers.
	BufferSize int
	// Workers is the number of goroutines gossip runs to handle deliveries.
	Workers int
	// MaxDeliveries is the number of attempts after which gossip dead-letters
	// a message; a delivery whose Attempt exceeds it is dead-lettered
	// before any handler runs. A driver must not drop a message on its own.
	MaxDeliveries int
	// AckWait is how long a delivery may stay unacknowledged before a
	// durable driver hands it to another member. gossip keeps the
	// deliveries it holds alive through KeepAliver.
	AckWait time.Duration
	// Start applies to a group created by this subscription.
	Start Start
	// Dropped is for at-most-once transports that discard what a slow
	// subscription has no room for (NATS core's slow consumer): the driver
	// calls it with the number of messages it discarded since its last
	// call, and gossip counts and logs them. It is never nil and may be
	// called from any goroutine until Close returns.
	Dropped func(n int)
}

// Subscription delivers messages to gossip. gossip owns its lifecycle:
// it decides retries, backoff, poison and dead letters, keeps long
// deliveries alive and settles them; the driver moves bytes, reports
// delivery counts (Delivery.Attempt) and settles what gossip tells it.
//
// The order of calls is strict. gossip calls Stop once, then settles what
// is still running (Ack, Nack, KeepAlive, Release may be called
// concurrently until then), then calls Close once, and after Close it
// calls nothing on the subscription. A driver needs no "settle after
// Close" case.
type Subscription interface {
	// Deliveries returns the channel gossip's workers read. The driver
	// closes it once it will send nothing more, which is at the latest when
	// Stop returns.
	Deliveries() <-chan Delivery

	// Stop stops fetching. What the driver fetched but could not hand over
	// (a client-side buffer, a delivery waiting for room in the channel) it
	// gives back to the transport at once (durable transports) or drops
	// (in-process ones, where nothing else holds it). Stop returns once the
	// Deliveries channel is closed, or when ctx ends first.
	Stop(ctx context.Context) error

	// Close releases what the subscription holds (connections, goroutines,
	// a broadcast listener's server-side consumer). It returns only when
	// the driver runs nothing more for it.
	Close(ctx context.Context) error
}

// Acker is implemented by subscriptions whose transport keeps
// unacknowledged messages and redelivers them (JetStream, Redis Streams
// groups). Without it a delivery is done once gossip has handled it.
// gossip hands acks over in batches: every delivery it has finished while
// the previous call was under way.
type Acker interface {
	// Ack marks the deliveries as done. An error leaves them to the
	// transport, which redelivers them after its ack wait. Like every
	// settling call, it must not keep ds after it returns.
	Ack(ctx context.Context, ds []Delivery) error
}

// Nacker is implemented by transports that redeliver natively after a
// delay (JetStream NakWithDelay). The redelivery may go to any member of
// the group, with Attempt counted by the transport. Without it gossip
// redelivers in process, keeping the delivery alive meanwhile.
type Nacker interface {
	Nack(ctx context.Context, ds []Delivery, delay time.Duration) error
}

// KeepAliver is implemented by transports that hand an unacknowledged
// delivery to another member after an ack wait (JetStream InProgress,
// Redis XCLAIM ... JUSTID). gossip calls it for deliveries it still holds
// (being handled, or waiting for an in-process retry) once their ack wait
// is a third gone.
type KeepAliver interface {
	KeepAlive(ctx context.Context, ds []Delivery) error
}

// Releaser is implemented by durable subscriptions (those that are an
// Acker) that can give deliveries back to their group at once, for another
// member: JetStream Nak, a Redis entry's idle time reset. When a
// subscription stops, gossip releases what it received but never started
// and what waited for an in-process retry. Without it those stay
// unacknowledged until the transport's ack wait hands them on. In-process
// transports (no Acker) have their unstarted deliveries handled before the
// subscription stops.
type Releaser interface {
	Release(ctx context.Context, ds []Delivery) error
}

// ValueCarrier is implemented by in-process connections that hand the
// publisher's value to subscribers as it is. gossip then fills Message.Value
// instead of encoding Message.Data.
type ValueCarrier interface {
	CarriesValues() bool
}

// DataCopier is implemented by connections whose Publish, once it returned
// nil, holds no reference to any Message's Data: the bytes were written out
// or copied (into the client's buffer, a command, a stored message). gossip
// then encodes events into memory it reuses from one Publish to the next
// instead of a new slice per event, and sets Data to nil after such a
// Publish. A Publish that returns an error may still hold Data; gossip
// reuses nothing then.
type DataCopier interface {
	CopiesData() bool
}

// ErrGroupsUnsupported is what a Conn's Subscribe returns (wrapped or as is)
// for a Group subscription on a transport without consumer groups (Redis
// Pub/Sub). gossip.ErrGroupsUnsupported is the same value.
var ErrGroupsUnsupported = errors.New("gossip: this transport has no consumer groups")

// ErrUnreadable is what drivers wrap in Delivery.Err for bytes on the wire
// that are not a readable event. gossip.ErrDecode is the same value, so
// errors.Is(err, gossip.ErrDecode) holds for them as for data that does not
// decode into a handler's type.
var ErrUnreadable = errors.New("gossip: cannot decode event data")

// ErrSubscriptionClosed is returned by a Conn's Subscribe after Close, and
// by settling calls when the subscription's transport resources are gone.
var ErrSubscriptionClosed = errors.New("gossip: subscription closed")
