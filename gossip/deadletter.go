package gossip

import (
	"strconv"
	"strings"
)

// The metadata keys a dead letter carries besides the original event's own.
const (
	MetaDeadLetterError        = "gossip-error"         // the last handler error
	MetaDeadLetterDeliveries   = "gossip-deliveries"    // delivery attempts made
	MetaDeadLetterType         = "gossip-original-type" // the event's own type
	MetaDeadLetterGroup        = "gossip-group"         // the group that gave up ("" for broadcast)
	MetaDeadLetterSubscription = "gossip-subscription"  // the pattern of the subscription that gave up
)

// DeadLetterPrefix is the first token of every dead-letter event type.
const DeadLetterPrefix = "dead_letter"

// DeadLetterType is the event type dead letters of events of type t that
// group gave up on are published under: "dead_letter.<group>.<t>", with "_"
// for the group of a broadcast subscription. Subscribe to
// "dead_letter.<group>.>" to see one group's dead letters, "dead_letter.>"
// for all.
func DeadLetterType(group string, t EventType) EventType {
	if group == "" {
		group = "_"
	}
	return EventType(DeadLetterPrefix + "." + group + "." + string(t))
}

// DeadLetter is what a dead letter says about why it is one.
type DeadLetter struct {
	OriginalType EventType
	Group        string
	Subscription EventType
	Deliveries   int
	Error        string
}

// DeadLetterInfo reads the dead-letter metadata of e; ok is false when e is
// not a dead letter.
func DeadLetterInfo(e *Event) (info DeadLetter, ok bool) {
	if !strings.HasPrefix(string(e.Type), DeadLetterPrefix+".") {
		return info, false
	}
	n, _ := strconv.Atoi(e.Metadata[MetaDeadLetterDeliveries])
	return DeadLetter{
		OriginalType: EventType(e.Metadata[MetaDeadLetterType]),
		Group:        e.Metadata[MetaDeadLetterGroup],
		Subscription: EventType(e.Metadata[MetaDeadLetterSubscription]),
		Deliveries:   n,
		Error:        e.Metadata[MetaDeadLetterError],
	}, true
}

// Replay returns a copy of dead letter e ready to publish again under its
// original type, with the dead-letter metadata removed and a fresh ID (so
// transports that deduplicate by ID store it).
func Replay(e *Event) *Event {
	info, _ := DeadLetterInfo(e)
	r := &Event{ID: NewID(), Type: info.OriginalType, Source: e.Source, Timestamp: e.Timestamp,
		Data: e.Data, raw: e.raw, contentType: e.contentType, Metadata: map[string]string{}}
	for k, v := range e.Metadata {
		switch k {
		case MetaDeadLetterError, MetaDeadLetterDeliveries, MetaDeadLetterType, MetaDeadLetterGroup, MetaDeadLetterSubscription:
		default:
			r.Metadata[k] = v
		}
	}
	return r
}
