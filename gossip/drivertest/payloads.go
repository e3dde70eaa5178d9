package drivertest

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// Payload is the typed payload the suite sends.
type Payload struct {
	Name    string            `json:"name"`
	Count   int64             `json:"count"`
	Tags    []string          `json:"tags"`
	Nested  map[string]string `json:"nested"`
	Unicode string            `json:"unicode"`
}

func samplePayload(i int) Payload {
	return Payload{
		Name:    "event-" + strconv.Itoa(i),
		Count:   1<<62 + int64(i), // beyond float64 precision: must survive as int64
		Tags:    []string{"a", "b"},
		Nested:  map[string]string{"k": "v"},
		Unicode: "héllo, 世界 ✓",
	}
}

func (s *suite) testTypedPayload(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	got := make(chan Payload, 1)
	e.subscribe(sub, e.typ("typed"), gossip.Typed(func(ctx context.Context, ev *gossip.Event, p Payload) error {
		got <- p
		return nil
	}))
	want := samplePayload(7)
	e.publish(pub, gossip.NewEvent(e.typ("typed"), want))
	assert.Equal(t, want, waitChan(t, got, s.h.Timeout, "typed payload"))
}

// A subscriber may decode into its own shape of the data: a map, or a struct
// of its own with a subset of the fields, on every transport alike.
func (s *suite) testDecodeOtherShapes(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	type subset struct {
		Name  string `json:"name"`
		Count int64  `json:"count"`
	}
	gotSubset := make(chan subset, 1)
	gotMap := make(chan map[string]any, 1)
	e.subscribe(sub, e.typ("shapes"), gossip.Typed(func(ctx context.Context, ev *gossip.Event, v subset) error {
		gotSubset <- v
		return nil
	}))
	e.subscribe(sub, e.typ("shapes"), func(ctx context.Context, ev *gossip.Event) error {
		var m map[string]any
		if err := ev.Decode(&m); err != nil {
			return gossip.Permanent(err)
		}
		gotMap <- m
		return nil
	})
	p := samplePayload(1)
	e.publish(pub, gossip.NewEvent(e.typ("shapes"), &p))
	assert.Equal(t, subset{Name: p.Name, Count: p.Count}, waitChan(t, gotSubset, s.h.Timeout, "subset"))
	m := waitChan(t, gotMap, s.h.Timeout, "map")
	assert.Equal(t, p.Name, m["name"])
	assert.Equal(t, p.Unicode, m["unicode"])
}

func (s *suite) testTypedPointer(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	got := make(chan *Payload, 1)
	e.subscribe(sub, e.typ("ptr"), gossip.Typed(func(ctx context.Context, ev *gossip.Event, p *Payload) error {
		got <- p
		return nil
	}))
	want := samplePayload(3)
	e.publish(pub, gossip.NewEvent(e.typ("ptr"), want)) // a value in, a pointer asked for
	p := waitChan(t, got, s.h.Timeout, "pointer payload")
	require.NotNil(t, p)
	assert.Equal(t, want, *p)
}

func (s *suite) testAttributes(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(func(c *gossip.Config) {}), e.bus()
	k := newSink()
	e.subscribe(sub, e.typ("attrs"), k.handler)
	ev := gossip.NewEvent(e.typ("attrs"), "x")
	e.publish(pub, ev)
	got := k.waitDistinct(t, 1, s.h.Timeout)[0]
	assert.Equal(t, ev.ID, got.ID)
	assert.Equal(t, ev.Type, got.Type)
	assert.Equal(t, "drivertest", got.Source, "Source filled from Config.Source")
	assert.WithinDuration(t, ev.Timestamp, got.Timestamp, time.Millisecond, "Timestamp kept (to the millisecond at least)")
	assert.Equal(t, 1, got.Attempt())
	var str string
	require.NoError(t, got.Decode(&str))
	assert.Equal(t, "x", str)
}

func (s *suite) testMetadata(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	// One handler of the event changes its metadata with WithMetadata while
	// another waits; the other must not see the change, nor must the
	// publisher's event.
	wrote := make(chan struct{})
	var once sync.Once
	e.subscribe(sub, e.typ("meta"), func(ctx context.Context, ev *gossip.Event) error {
		ev.WithMetadata("simple", "changed by another handler").WithMetadata("added", "by another handler")
		once.Do(func() { close(wrote) })
		return nil
	})
	seen := make(chan map[string]string, 1)
	e.subscribe(sub, e.typ("meta"), func(ctx context.Context, ev *gossip.Event) error {
		select {
		case <-wrote:
		case <-time.After(s.h.Timeout):
			return gossip.Permanent(errors.New("the other handler never ran"))
		}
		seen <- maps.Clone(ev.Metadata) // read only after the other handler wrote
		return nil
	}, gossip.Workers(1))
	meta := map[string]string{
		"simple":          "value",
		"Mixed-Case":      "Keeps Case",
		"with space":      "  padded  ",
		"ünïcode-ключ":    "unicode ✓ 世界",
		"colon:inside":    "a:b",
		"dot.key":         "",
		"percent":         "%41 stays %41",
		"multi-line":      "line1\r\nline2",
		"long":            strings.Repeat("x", 2000),
		"traceparent-ish": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	ev := gossip.NewEvent(e.typ("meta"), nil)
	for k, v := range meta {
		ev.WithMetadata(k, v)
	}
	e.publish(pub, ev)
	got := waitChan(t, seen, s.h.Timeout, "the event's metadata")
	for k, v := range meta {
		assert.Equal(t, v, got[k], "metadata %q", k)
	}
	assert.Equal(t, "", got["added"], "WithMetadata in one handler changed what another handler sees")
	assert.Equal(t, "value", ev.Metadata["simple"], "WithMetadata in a handler changed the publisher's event")
	assert.Equal(t, "", ev.Metadata["added"], "WithMetadata in a handler changed the publisher's event")
}

// Publishing a *Event, changing its metadata with WithMetadata and
// publishing it again does not change what the handler of the first
// delivery sees (and, under -race, is no data race).
func (s *suite) testRepublishedMetadata(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("republish")
	entered := make(chan struct{}, 1)
	republished := make(chan struct{})
	seen := make(chan map[string]string, 1)
	var calls atomic.Int64
	e.subscribe(sub, typ, func(ctx context.Context, ev *gossip.Event) error {
		if calls.Add(1) != 1 {
			return nil // the second publish (JetStream may drop it as a duplicate ID)
		}
		entered <- struct{}{}
		select { // read the metadata only once the event was changed and sent again
		case <-republished:
		case <-time.After(s.h.Timeout):
		}
		seen <- maps.Clone(ev.Metadata)
		return nil
	}, gossip.Workers(1))
	ev := gossip.NewEvent(typ, "same pointer").WithMetadata("k", "first")
	e.publish(pub, ev)
	waitChan(t, entered, s.h.Timeout, "the first delivery's handler")
	ev.WithMetadata("k", "second").WithMetadata("added", "later")
	e.publish(pub, ev)
	close(republished)
	got := waitChan(t, seen, s.h.Timeout, "the first delivery's metadata")
	assert.Equal(t, "first", got["k"], "a handler saw metadata changed after its event was published")
	assert.Equal(t, "", got["added"], "a handler saw metadata added after its event was published")
}
