package drivertest

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

func (s *suite) testPublishCancelled(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Publish(ctx, gossip.NewEvent(e.typ("cancel"), 1))
	require.ErrorIs(t, err, context.Canceled)
}

func (s *suite) testInvalidTypes(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	k := newSink()
	e.subscribe(b, gossip.EventType(e.prefix+".>"), k.handler)
	for _, typ := range []gossip.EventType{"", "a..b", "a b", ".a", "a.", e.typ("*"), e.typ(">"), "a/b", "ünï"} {
		err := b.Publish(context.Background(), gossip.NewEvent(typ, 1))
		assert.ErrorIs(t, err, gossip.ErrInvalidEventType, "Publish %q", typ)
	}
	// A batch with one bad event sends none of it.
	good := gossip.NewEvent(e.typ("good"), 1)
	err := b.Publish(context.Background(), good, gossip.NewEvent("bad type", 2))
	assert.ErrorIs(t, err, gossip.ErrInvalidEventType)
	for _, p := range []gossip.EventType{"", "a..b", "a.>.b", "a*", "a b"} {
		_, err := b.Subscribe(p, k.handler)
		assert.ErrorIs(t, err, gossip.ErrInvalidEventType, "Subscribe %q", p)
	}
	for _, g := range []string{"a.b", "a b", "*"} {
		_, err := b.Subscribe(e.typ("x"), k.handler, gossip.Group(g))
		assert.ErrorIs(t, err, gossip.ErrInvalidEventType, "Group %q", g)
	}
	marker := gossip.NewEvent(e.typ("marker"), 1)
	e.publish(b, marker)
	got := k.waitDistinct(t, 1, s.h.Timeout)
	assert.Equal(t, marker.ID, got[0].ID, "nothing of a rejected batch was sent")
}

func (s *suite) testInvalidEvents(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	assert.ErrorIs(t, b.Publish(context.Background(), nil), gossip.ErrInvalidEvent)
	bad := gossip.NewEvent(e.typ("x"), 1)
	bad.Metadata = map[string]string{"": "empty key"}
	assert.ErrorIs(t, b.Publish(context.Background(), bad), gossip.ErrInvalidEvent)
	bad.Metadata = map[string]string{"k": "\xff\xfe"}
	assert.ErrorIs(t, b.Publish(context.Background(), bad), gossip.ErrInvalidEvent)
	if s.h.Encodes {
		assert.ErrorIs(t, b.Publish(context.Background(), gossip.NewEvent(e.typ("x"), func() {})), gossip.ErrInvalidEvent,
			"data the codec cannot encode")
	}
}

func (s *suite) testTooLarge(t *testing.T) {
	if !s.h.Encodes {
		t.Skip("transport encodes nothing; no size limit applies")
	}
	e := s.env(t)
	b := e.bus(func(c *gossip.Config) { c.MaxEventSize = 4096 })
	k := newSink()
	e.subscribe(b, e.typ(">"), k.handler, gossip.Workers(1))
	err := b.Publish(context.Background(), gossip.NewEvent(e.typ("big"), strings.Repeat("x", 5000)))
	require.ErrorIs(t, err, gossip.ErrEventTooLarge)
	marker := gossip.NewEvent(e.typ("small"), "ok")
	e.publish(b, marker)
	got := k.waitDistinct(t, 1, s.h.Timeout)
	assert.Equal(t, marker.ID, got[0].ID, "the large event was not sent")
}
