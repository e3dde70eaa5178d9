package gossip

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gossipbus/gossip/gossip/driver"
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

// The metadata keys Replay sets on the event it makes, and a dead letter of
// that event carries on: a replayed event links back to the event that was
// first dead-lettered, and says how often it has come back.
const (
	// MetaReplayOf is the ID of the event first dead-lettered: the dead
	// letter's ID on a first replay, kept as it is on later ones.
	MetaReplayOf = "gossip-replay-of"
	// MetaReplays counts the replays: "1" on the first, one more on each
	// replay of a dead letter of a replayed event.
	MetaReplays = "gossip-replays"
)

// Replay returns a copy of dead letter e ready to publish again under its
// original type, with the dead-letter metadata removed, a fresh ID (so
// transports that deduplicate by ID store it), MetaReplayOf naming the
// event first dead-lettered and MetaReplays counting the replays.
func Replay(e *Event) *Event {
	info, _ := DeadLetterInfo(e)
	r := &Event{ID: NewID(), Type: info.OriginalType, Source: e.Source, Timestamp: e.Timestamp,
		Data: e.Data, raw: e.raw, contentType: e.contentType, Metadata: map[string]string{}}
	for k, v := range e.Metadata {
		if !isDeadLetterKey(k) {
			r.Metadata[k] = v
		}
	}
	if r.Metadata[MetaReplayOf] == "" {
		r.Metadata[MetaReplayOf] = e.ID
	}
	n, _ := strconv.Atoi(e.Metadata[MetaReplays])
	r.Metadata[MetaReplays] = strconv.Itoa(max(n, 0) + 1)
	return r
}

// ReplayCount is how many times e was replayed (MetaReplays): 0 for an
// event, or a dead letter of an event, that never was.
func ReplayCount(e *Event) int {
	n, _ := strconv.Atoi(e.Metadata[MetaReplays])
	return max(n, 0)
}

// More metadata a dead letter may carry: what was changed to make it
// publishable.
const (
	// MetaDeadLetterDataBytes is set when the data was too large for a dead
	// letter and was left out: its size in bytes.
	MetaDeadLetterDataBytes = "gossip-data-bytes"
	// MetaDeadLetterDropped lists (quoted, comma-separated) the metadata
	// keys left out because they were invalid or too large.
	MetaDeadLetterDropped = "gossip-dropped-metadata"
	// MetaDeadLetterOriginalID holds, quoted in Go syntax, the ID of an
	// event another producer sent with an ID the rule refuses (the dead
	// letter has a new one).
	MetaDeadLetterOriginalID = "gossip-original-id"
)

// maxReason bounds the error text a dead letter carries.
const maxReason = 2048

// deadLetterTries bounds the attempts to publish one dead letter while the
// transport fails, each after the subscription's backoff.
const deadLetterTries = 3

// deadLetter publishes the delivery under DeadLetterType(group, type) with
// the reason and attempt count, then acks it. What would make the dead
// letter unpublishable is repaired on it (see deadLetterEvent). While the
// transport fails the publish is retried with backoff; then a durable
// delivery is left unacknowledged (the transport redelivers it after its
// ack wait, and it is dead-lettered then) and an in-process one is dropped
// with an error log.
func (s *Subscription) deadLetter(d driver.Delivery, reason error) {
	m := d.Message
	if strings.HasPrefix(m.Type, DeadLetterPrefix+".") {
		// A dead letter a handler (of a wildcard, say) gave up on is not
		// dead-lettered again: that would nest dead_letter.dead_letter...
		// without end. It is stored already; say so and let it go.
		s.bus.logger.Error("gossip: handler failed on a dead letter; it stays where it was published",
			"id", m.ID, "type", m.Type, "group", s.cfg.group, "deliveries", d.Attempt, "error", reason)
		s.settle.ack(d)
		return
	}
	dl := s.deadLetterEvent(d, reason)
	var err error
	for try := 1; try <= deadLetterTries && !s.settle.abandoned(); try++ {
		ctx, cancel := context.WithTimeout(context.Background(), s.bus.cfg.DialTimeout)
		err = s.bus.publishInternal(ctx, dl)
		cancel()
		if err == nil {
			s.bus.logger.Warn("gossip: event dead-lettered",
				"id", m.ID, "type", m.Type, "group", s.cfg.group, "deliveries", d.Attempt,
				"dead_letter_type", string(dl.Type), "error", reason)
			s.settle.ack(d)
			return
		}
		if try < deadLetterTries && !s.backoff.Wait(s.ctx, try) {
			break
		}
	}
	if s.acker != nil {
		s.bus.logger.Error("gossip: cannot publish dead letter; the transport redelivers the event after its ack wait",
			"id", m.ID, "type", m.Type, "group", s.cfg.group, "error", err, "reason", reason)
		return
	}
	s.bus.logger.Error("gossip: cannot publish dead letter; the event is dropped",
		"id", m.ID, "type", m.Type, "group", s.cfg.group, "error", err, "reason", reason)
}

// deadLetterEvent is the dead letter of d, repaired to be publishable.
func (s *Subscription) deadLetterEvent(d driver.Delivery, reason error) *Event {
	m := d.Message
	meta := make(map[string]string, len(m.Metadata)+6)
	var dropped []string
	for k, v := range m.Metadata {
		if driver.CheckMetadata(k, v) != nil {
			dropped = append(dropped, strconv.Quote(k))
			continue
		}
		meta[k] = v
	}
	why := strings.ToValidUTF8(reason.Error(), "\uFFFD")
	if len(why) > maxReason {
		why = strings.ToValidUTF8(why[:maxReason], "") + "..."
	}
	meta[MetaDeadLetterError] = why
	meta[MetaDeadLetterDeliveries] = strconv.Itoa(d.Attempt)
	meta[MetaDeadLetterType] = strings.ToValidUTF8(m.Type, "\uFFFD")
	meta[MetaDeadLetterGroup] = s.cfg.group
	meta[MetaDeadLetterSubscription] = string(s.pattern)
	dl := &Event{
		ID: m.ID, Type: deadLetterTypeFor(s.cfg.group, m.Type), Source: m.Source,
		Timestamp: m.Time, Metadata: meta, contentType: m.ContentType,
	}
	if m.Data != nil {
		dl.raw = m.Data
	} else {
		dl.Data = m.Value
	}
	if driver.CheckID(dl.ID) != nil {
		id := strconv.QuoteToASCII(m.ID)
		if len(id) > maxReason {
			id = id[:maxReason] + "..."
		}
		meta[MetaDeadLetterOriginalID] = id
		dl.ID = NewID()
	}
	if driver.CheckSource(dl.Source) != nil {
		dl.Source = s.bus.cfg.Source
	}
	if !s.bus.inProcess {
		s.fitDeadLetter(dl, &dropped)
	}
	if len(dropped) > 0 {
		meta[MetaDeadLetterDropped] = truncateList(dropped, maxReason)
	}
	return dl
}

// fitDeadLetter keeps dl within Config.MaxEventSize, with room for the
// trace context publish middleware adds: first without its data (a note of
// its size instead), then without its largest metadata.
func (s *Subscription) fitDeadLetter(dl *Event, dropped *[]string) {
	limit := s.bus.cfg.MaxEventSize - 1024 - maxReason
	size := func() int {
		m := driver.Message{ID: dl.ID, Type: string(dl.Type), Source: dl.Source, ContentType: dl.contentType, Data: dl.raw, Metadata: dl.Metadata}
		return m.Size()
	}
	if size() <= limit {
		return
	}
	dl.Metadata[MetaDeadLetterDataBytes] = strconv.Itoa(len(dl.raw))
	dl.raw, dl.contentType = []byte{}, ""
	keys := slices.SortedFunc(maps.Keys(dl.Metadata), func(a, b string) int {
		return len(dl.Metadata[b]) + len(b) - len(dl.Metadata[a]) - len(a)
	})
	for _, k := range keys {
		if size() <= limit {
			return
		}
		if !isDeadLetterKey(k) {
			delete(dl.Metadata, k)
			*dropped = append(*dropped, strconv.Quote(k))
		}
	}
}

var deadLetterKeys = []string{MetaDeadLetterError, MetaDeadLetterDeliveries, MetaDeadLetterType, MetaDeadLetterGroup,
	MetaDeadLetterSubscription, MetaDeadLetterDataBytes, MetaDeadLetterDropped}

func isDeadLetterKey(k string) bool { return slices.Contains(deadLetterKeys, k) }

// deadLetterTypeFor is DeadLetterType(group, t), shortened to the type
// length limit by dropping t's last tokens (the full type is in the
// metadata); "unknown" stands for a t that is not a valid type.
func deadLetterTypeFor(group, t string) EventType {
	if driver.ValidateType(t) != nil {
		t = "unknown"
	}
	dt := DeadLetterType(group, EventType(t))
	for len(dt) > 255 {
		i := strings.LastIndexByte(t, '.')
		if i < 0 {
			return DeadLetterType(group, "unknown")
		}
		t = t[:i]
		dt = DeadLetterType(group, EventType(t+".truncated"))
	}
	return dt
}

// truncateList joins items with commas, within limit bytes.
func truncateList(items []string, limit int) string {
	slices.Sort(items)
	s := strings.Join(items, ",")
	if len(s) > limit {
		s = s[:strings.LastIndexByte(s[:limit-4], ',')+1] + "..."
	}
	return s
}
