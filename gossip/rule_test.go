package gossip_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// Publish accepts every ID and metadata key of 1 to 256 bytes of valid
// UTF-8 without control characters, and every valid UTF-8 value.
func TestPublishAcceptsIDsAndMetadataWithinTheRule(t *testing.T) {
	b := newBus(t, nil)
	names := []string{
		"x", " ", " id ", "%41", `"q"`, "ид-✓", "a:b", "a.b-c_d", "K", "k",
		strings.Repeat("x", 256), strings.Repeat("é", 128), // 256 bytes
		"\u00a0nbsp", "\u00a0", "\u200b", "\U0010FFFF", // not Cc: no-break space, zero-width space, the last code point
		"\u00a1Â", // 'Â' (U+00C2, bytes 0xC3 0x82) is no control
	}
	for _, n := range names {
		e := gossip.NewEvent("rule.ok", 1)
		e.ID = n
		e.Metadata = map[string]string{n: n}
		assert.NoError(t, b.Publish(context.Background(), e), "ID and key %q", n)
	}
	for _, v := range []string{"", " ", "a\r\nb", "\t", "\n", "\x00", "\x7f", "\u0085", " padded ", strings.Repeat("v", 10000)} {
		e := gossip.NewEvent("rule.ok", 1).WithMetadata("k", v)
		assert.NoError(t, b.Publish(context.Background(), e), "value %q", v)
	}
}

// Publish refuses the rest with an error wrapping ErrInvalidEvent that
// names the rule, and sends nothing of the batch.
func TestPublishRefusesIDsAndMetadataOutsideTheRule(t *testing.T) {
	b := newBus(t, nil)
	got := make(chan *gossip.Event, 100)
	_, err := b.Subscribe("rule.>", func(ctx context.Context, e *gossip.Event) error { got <- e; return nil })
	require.NoError(t, err)
	bad := []struct{ name, s, why string }{
		{"257 bytes", strings.Repeat("x", 257), "is 257 bytes"},
		{"257 bytes of UTF-8", strings.Repeat("é", 128) + "x", "is 257 bytes"},
		{"NUL", "a\x00b", "U+0000"},
		{"LF", "a\n", "U+000A"},
		{"CR", "\rb", "U+000D"},
		{"tab", "a\tb", "U+0009"},
		{"unit separator", "a\x1f", "U+001F"},
		{"DEL", "a\x7f", "U+007F"},
		{"C1 first", "a\u0080", "U+0080"},
		{"C1 last", "\u009fa", "U+009F"},
		{"invalid UTF-8", "a\xffb", "not valid UTF-8"},
		{"a lone continuation byte", "\x80", "not valid UTF-8"},
		{"a surrogate", "\xed\xa0\x80", "not valid UTF-8"},
	}
	for _, tc := range bad {
		t.Run("ID "+tc.name, func(t *testing.T) {
			e := gossip.NewEvent("rule.id", 1)
			e.ID = tc.s
			err := b.Publish(context.Background(), gossip.NewEvent("rule.good", 1), e)
			require.ErrorIs(t, err, gossip.ErrInvalidEvent)
			assert.Contains(t, err.Error(), tc.why)
			assert.Contains(t, err.Error(), "an event ID is 1 to 256 bytes of valid UTF-8 without control characters")
		})
		t.Run("key "+tc.name, func(t *testing.T) {
			e := gossip.NewEvent("rule.key", 1).WithMetadata(tc.s, "v")
			err := b.Publish(context.Background(), e)
			require.ErrorIs(t, err, gossip.ErrInvalidEvent)
			assert.Contains(t, err.Error(), tc.why)
			assert.Contains(t, err.Error(), "a metadata key is 1 to 256 bytes of valid UTF-8 without control characters")
		})
	}
	t.Run("empty key", func(t *testing.T) {
		err := b.Publish(context.Background(), gossip.NewEvent("rule.key", 1).WithMetadata("", "v"))
		require.ErrorIs(t, err, gossip.ErrInvalidEvent)
		assert.Contains(t, err.Error(), `metadata key "" is empty`)
	})
	t.Run("invalid UTF-8 value, never quoted", func(t *testing.T) {
		err := b.Publish(context.Background(), gossip.NewEvent("rule.value", 1).WithMetadata("token", "TOPSECRET\xff"))
		require.ErrorIs(t, err, gossip.ErrInvalidEvent)
		assert.Contains(t, err.Error(), `the value of metadata key "token" is not valid UTF-8`)
		assert.NotContains(t, err.Error(), "TOPSECRET")
	})

	t.Run("timestamp beyond RFC 3339", func(t *testing.T) {
		for _, ts := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600))} {
			e := gossip.NewEvent("rule.time", 1)
			e.Timestamp = ts
			err := b.Publish(context.Background(), e)
			require.ErrorIs(t, err, gossip.ErrInvalidEvent)
			assert.Contains(t, err.Error(), "outside the years 0000 to 9999 in UTC")
		}
		e := gossip.NewEvent("unwatched.time", 1) // not for the subscriber
		e.Timestamp = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
		assert.NoError(t, b.Publish(context.Background(), e))
	})

	marker := gossip.NewEvent("rule.marker", 1)
	require.NoError(t, b.Publish(context.Background(), marker))
	select {
	case e := <-got:
		assert.Equal(t, marker.ID, e.ID, "nothing of a refused batch was sent")
	case <-time.After(5 * time.Second):
		t.Fatal("the marker event was not delivered")
	}
}
