package gossip

import (
	"encoding/binary"
	"encoding/hex"
	"maps"
	"math/rand/v2"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gossipbus/gossip/gossip/driver"
)

// EventType names a kind of event: dot-separated tokens of letters, digits,
// '_' and '-', such as "user_service.user.created". Subscribe patterns may
// use "*" for one token and ">" as the last token for the rest.
type EventType string

// Validate reports whether t is a valid event type to publish.
func (t EventType) Validate() error { return driver.ValidateType(string(t)) }

// Matches reports whether the event type t matches pattern p.
func (t EventType) Matches(p EventType) bool { return driver.Match(string(p), string(t)) }

// Event is one thing that happened, as publishers create it and handlers see
// it.
type Event struct {
	// ID is unique and sorts by creation time (a UUIDv7). NewEvent sets it,
	// and Publish sets an empty one. An ID set by hand must be 1 to 256
	// bytes of valid UTF-8 without control characters (Unicode Cc: U+0000
	// to U+001F, U+007F to U+009F); Publish refuses any other with an error
	// wrapping ErrInvalidEvent. Everything the rule allows (spaces, leading
	// and trailing ones, '%', quotes, non-ASCII) arrives byte for byte on
	// every transport, and distinct IDs stay distinct.
	ID string
	// Type says what happened.
	Type EventType
	// Source names the publishing service. Publish fills it from
	// Config.Source when it is empty.
	Source string
	// Timestamp is when the event was created. Publish sets a zero one and
	// refuses one outside the years 0000 to 9999 in UTC (RFC 3339).
	Timestamp time.Time
	// Data is the payload. Publishers set any value the codec can encode.
	// Handlers should read it with Decode or Typed, which give the same
	// result on every transport: on the memory transport Data is the
	// publisher's value itself (shared, to be treated as read-only); on
	// Redis and NATS it is the encoded bytes (json.RawMessage for JSON).
	Data any
	// Metadata travels as transport headers. A key is 1 to 256 bytes of
	// valid UTF-8 without control characters, as an ID; a value is any
	// valid UTF-8, including CR, LF, tabs, leading and trailing spaces and
	// the empty string. Publish refuses anything else with an error
	// wrapping ErrInvalidEvent; what the rule allows arrives byte for byte
	// on every transport (keys keep their case: "K" and "k" are two keys).
	Metadata map[string]string

	// Set on delivered events.
	raw         []byte // encoded data, when it came over a wire
	contentType string
	codecs      *codecSet
	attempt     int
	maxAttempts int
	group       string
	sharedMeta  bool // Metadata is shared with other deliveries: copy before writing

	// NewEvent allocates the event's first transport message with it, so
	// that publishing it costs no allocation of its own.
	spare *spareMessage
}

type spareMessage struct {
	owner *Event // a copy of the Event does not own it
	used  uint32 // claimed by the first publish
	msg   driver.Message
	id    [36]byte // the ID NewEvent made, never written after
}

type eventWithMessage struct {
	Event
	spare spareMessage
}

// message returns the transport message for e: its own on the first
// publish, a new one after that (the first may still be held by a
// transport, and must not change).
func (e *Event) message() *driver.Message {
	if sp := e.spare; sp != nil && sp.owner == e && atomic.CompareAndSwapUint32(&sp.used, 0, 1) {
		return &sp.msg
	}
	return new(driver.Message)
}

// madeID reports whether e's ID is the one NewEvent made for it, which
// needs no check.
func (e *Event) madeID() bool {
	sp := e.spare
	return sp != nil && sp.owner == e && len(e.ID) == len(sp.id) && unsafe.StringData(e.ID) == &sp.id[0]
}

// NewEvent returns an event of type t carrying data, with a fresh ID and the
// current time.
func NewEvent(t EventType, data any) *Event {
	now := time.Now()
	ew := &eventWithMessage{Event: Event{Type: t, Timestamp: now, Data: data}}
	putID(&ew.spare.id, now)
	ew.ID = unsafe.String(&ew.spare.id[0], len(ew.spare.id)) // one allocation for all of it
	ew.spare.owner = &ew.Event
	ew.Event.spare = &ew.spare
	return &ew.Event
}

// WithMetadata sets a metadata key and returns e, for chaining. On a
// delivered event it copies the metadata first, so other handlers of the
// same event never see the change.
func (e *Event) WithMetadata(key, value string) *Event {
	if e.Metadata == nil {
		e.Metadata = make(map[string]string, 4)
	} else if e.sharedMeta {
		e.Metadata = maps.Clone(e.Metadata)
	}
	e.sharedMeta = false
	e.Metadata[key] = value
	return e
}

// Attempt is the delivery attempt of a delivered event, starting at 1; 0 on
// an event that was not delivered.
func (e *Event) Attempt() int { return e.attempt }

// MaxDeliveries is the number of attempts the subscription that delivered e
// makes before it dead-letters the event; 0 on an event that was not
// delivered. With Attempt it tells middleware whether a failure now is final.
func (e *Event) MaxDeliveries() int { return e.maxAttempts }

// Group is the consumer group the event was delivered to, "" for a
// broadcast subscription or an event that was not delivered.
func (e *Event) Group() string { return e.group }

// Decode fills v, a pointer, from the event's data, whatever the transport:
// from the publisher's value on the memory transport (assigned directly when
// the types match, converted through the codec when they do not), from the
// encoded bytes on Redis and NATS. A failure wraps ErrDecode.
func (e *Event) Decode(v any) error {
	if e.raw != nil {
		return e.codecs.decode(e.contentType, e.raw, v, e)
	}
	if assign(e.Data, v) {
		return nil
	}
	// Types differ: go through the codec, as a remote subscriber would.
	c := e.codecs.def()
	b, err := c.Marshal(e.Data)
	if err != nil {
		return &DecodeError{EventID: e.ID, Type: e.Type, Err: err}
	}
	return e.codecs.decode(c.ContentType(), b, v, e)
}

// The ID: a UUIDv7, 48 bits of Unix milliseconds, then a 12-bit counter that
// keeps IDs from one process strictly increasing within a millisecond, then
// 62 random bits.
var idClock atomic.Uint64 // the last ID's ms<<12 | sequence

// NewID returns a new event ID: a UUIDv7 string that sorts by creation time
// (and by creation order within one process).
func NewID() string {
	var s [36]byte
	putID(&s, time.Now())
	return string(s[:])
}

// putID writes a new ID, made at now, into s.
func putID(s *[36]byte, now time.Time) {
	// The clock moves to now, or one step past the last ID when that is not
	// behind now; a full sequence carries into the next millisecond.
	next := uint64(now.UnixMilli()) << 12
	for {
		last := idClock.Load()
		v := max(next, last+1)
		if idClock.CompareAndSwap(last, v) {
			next = v
			break
		}
	}
	ms, seq := next>>12, next&0xfff

	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], ms<<16|0x7000|seq)
	binary.BigEndian.PutUint64(b[8:16], rand.Uint64()&0x3fffffffffffffff|0x8000000000000000)
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
}
