package drivertest

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// hostileIDs are IDs the rule allows that a wire may mangle: they differ
// only in outer spaces, in case, or in what an escaping would make of them.
var hostileIDs = []string{
	"x", " x", "x ", " x ", "  x", " ", "  ", "   ",
	"%41", "A", "a", "%2541", "%", "%%", "%zz", "a b", "a%20b", "a+b",
	`"`, `"quoted"`, `'single'`, `\`, `a\"b`, "a:b", "a;b", "a,b", "a=b",
	"ид", "✓ 世界", "é", "e\u0301", "\u00a0", "\u00a0x\u00a0", "\u200b", "🙂",
	"ce-id", "gossip-meta-x", "Nats-Msg-Id",
	strings.Repeat("z", 256), strings.Repeat("é", 128),
}

// hostileMetadata are keys and values the rule allows that a wire may
// mangle: values with line breaks, tabs, outer spaces or nothing; keys that
// differ only in case; keys with '-', '.', ':', spaces and non-ASCII.
func hostileMetadata() map[string]string {
	return map[string]string{
		"cr": "a\rb", "lf": "a\nb", "crlf": "line1\r\nline2\r\n", "tab": "\ta\tb\t", "outer": "  padded  ",
		"lead": " x", "trail": "x ", "space": " ", "empty": "", "nul-and-del": "a\x00b\x7fc\u0085",
		"Key": "upper", "key": "lower", "KEY": "all upper", "kEy": "mixed",
		"x-request-id": "dash", "a.b.c": "dots", "a:b": "colon", "a-b.c:d": "all three",
		"ключ": "non-ASCII key", "ünï-cødé.key:1": "värde ✓ 世界", "with space": "v", " lead": "v", "trail ": "v",
		"%41": "percent key", "A": "not the same key as %41", "pct": "%41 %zz %", "quote\"key": `"q"`,
		"ce-id": "not the ID", "content-type": "not the content type", "gossip-meta-x": "prefixed",
		strings.Repeat("k", 256): strings.Repeat("v", 1000),
	}
}

// Events whose IDs and metadata are hostile but within the rule are each
// handled exactly once, with ID and metadata byte for byte; IDs that differ
// in a byte stay distinct.
func (s *suite) testHostileIDsAndMetadataRoundTrip(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("hostile")
	k := newSink()
	e.subscribe(sub, typ, k.handler, gossip.Workers(1))

	sent := map[string]map[string]string{}
	var events []*gossip.Event
	for i, id := range hostileIDs {
		ev := gossip.NewEvent(typ, i)
		ev.ID = id
		ev.Metadata = hostileMetadata()
		ev.Metadata["n"] = fmt.Sprint(i)
		sent[id] = maps.Clone(ev.Metadata)
		events = append(events, ev)
	}
	require.Len(t, sent, len(hostileIDs), "the test's IDs are distinct")
	for _, ev := range events[:len(events)/2] {
		e.publish(pub, ev) // one by one
	}
	e.publish(pub, events[len(events)/2:]...) // and as a batch
	marker := gossip.NewEvent(typ, "marker")
	e.publish(pub, marker)
	k.waitIDs(t, append(events, marker), s.h.Timeout)

	// With Workers(1) the marker comes after everything published before
	// it: a second delivery of any event would have come by now.
	for _, got := range k.snapshot() {
		if got.ID == marker.ID {
			continue
		}
		want, ok := sent[got.ID]
		if !assert.True(t, ok, "an ID that was not sent arrived: %q", got.ID) {
			continue
		}
		assert.Equal(t, want, got.Metadata, "metadata of event %q, byte for byte", got.ID)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, id := range hostileIDs {
		assert.Equal(t, 1, k.ids[id], "event %q handled exactly once", id)
	}
	assert.Len(t, k.events, len(hostileIDs)+1, "each event handled once, nothing else")
}

// Events outside the rule (a control character in the ID, an ID over 256
// bytes, a metadata value that is not UTF-8, ...) fail Publish with
// ErrInvalidEvent, and nothing of them is delivered.
func (s *suite) testOutsideTheRuleRefused(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("refused")
	k := newSink()
	e.subscribe(sub, typ, k.handler, gossip.Workers(1))
	for _, tc := range []struct {
		name string
		make func(ev *gossip.Event)
	}{
		{"LF in the ID", func(ev *gossip.Event) { ev.ID = "a\nb" }},
		{"CR LF at the ID's end", func(ev *gossip.Event) { ev.ID = "a\r\n" }},
		{"NUL in the ID", func(ev *gossip.Event) { ev.ID = "\x00" }},
		{"tab in the ID", func(ev *gossip.Event) { ev.ID = "a\tb" }},
		{"C1 control in the ID", func(ev *gossip.Event) { ev.ID = "a\u0085" }},
		{"a 257-byte ID", func(ev *gossip.Event) { ev.ID = strings.Repeat("x", 257) }},
		{"an ID that is not UTF-8", func(ev *gossip.Event) { ev.ID = "a\xff" }},
		{"a metadata value that is not UTF-8", func(ev *gossip.Event) { ev.WithMetadata("k", "\xc3\x28") }},
		{"an empty metadata key", func(ev *gossip.Event) { ev.WithMetadata("", "v") }},
		{"a control character in a metadata key", func(ev *gossip.Event) { ev.WithMetadata("a\nb", "v") }},
		{"a 257-byte metadata key", func(ev *gossip.Event) { ev.WithMetadata(strings.Repeat("k", 257), "v") }},
	} {
		ev := gossip.NewEvent(typ, tc.name)
		tc.make(ev)
		err := pub.Publish(context.Background(), ev)
		assert.ErrorIs(t, err, gossip.ErrInvalidEvent, tc.name)
		// In a batch, the valid event before it is not sent either.
		err = pub.Publish(context.Background(), gossip.NewEvent(typ, "valid, in a refused batch"), ev)
		assert.ErrorIs(t, err, gossip.ErrInvalidEvent, tc.name+", in a batch")
	}
	marker := gossip.NewEvent(typ, "marker")
	e.publish(pub, marker)
	got := k.waitDistinct(t, 1, s.h.Timeout)
	require.Len(t, got, 1, "only the marker was delivered")
	assert.Equal(t, marker.ID, got[0].ID, "only the marker was delivered")
}
