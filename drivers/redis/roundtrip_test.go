package redis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// modes are the driver's two modes, as URL parameters.
var modes = []struct{ name, mode string }{{"streams", "streams"}, {"pubsub", "pubsub"}}

// IDs and metadata values arrive byte for byte, in both modes: line breaks,
// outer spaces, '%', quotes, non-ASCII and empty values.
func TestIDsAndMetadataRoundTrip(t *testing.T) {
	requireRedis(t)
	ids := []string{" ", "  lead", "trail  ", "100%", "%41", `"quoted"`, "naïve-日本", "a+b&c=d", "x/y?z#w"}
	values := []string{"", " ", "line1\nline2", "cr\r\nlf", "\ttab", "100%", "%zz", `"q"`, "ünï", "  both  "}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			bus := newBus(t, withParams(testURL, "mode", m.mode), ns)
			got := make(chan *gossip.Event, len(ids))
			_, err := bus.Subscribe("roundtrip.ids", func(ctx context.Context, e *gossip.Event) error {
				got <- e
				return nil
			}, gossip.Workers(1))
			require.NoError(t, err)
			want := map[string]map[string]string{}
			for i, id := range ids {
				e := gossip.NewEvent("roundtrip.ids", i)
				e.ID = id
				meta := map[string]string{}
				for j, v := range values {
					k := []string{"plain", "with space", "ключ", "pct%key", "quote\"key"}[j%5] + string(rune('a'+j))
					e.WithMetadata(k, v)
					meta[k] = v
				}
				want[id] = meta
				require.NoError(t, bus.Publish(context.Background(), e), "%q", id)
			}
			for _, e := range collect(t, got, len(ids), 10*time.Second, "the events") {
				meta, ok := want[e.ID]
				if assert.True(t, ok, "unexpected ID %q", e.ID) {
					assert.Equal(t, meta, e.Metadata, "metadata of %q", e.ID)
					delete(want, e.ID)
				}
			}
			assert.Empty(t, want, "IDs not received as they were sent")
		})
	}
}

// rawCodec publishes []byte as they are, as application/octet-stream.
type rawCodec struct{}

func (rawCodec) ContentType() string { return "application/octet-stream" }
func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, errors.New("rawCodec: not []byte")
	}
	return b, nil
}
func (rawCodec) Unmarshal(b []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), b...)
	return nil
}

// Data arrives byte for byte in both modes: JSON as it was written (not
// compacted, not HTML-escaped), and bytes that are not JSON.
func TestDataIsByteIdentical(t *testing.T) {
	requireRedis(t)
	payloads := []struct {
		name string
		data any // json.RawMessage (published as JSON as it is) or []byte
		want []byte
	}{
		{"indented JSON with <b>&", json.RawMessage("{\n  \"html\": \"<b>&amp;</b>\",\n  \"n\" : 1\n}"), nil},
		{"JSON with escapes", json.RawMessage(`{"s":"\u003c\/x\u003e","u":"ü"}`), nil},
		{"JSON with trailing newline", json.RawMessage("[1, 2]\n"), nil},
		{"JSON string", json.RawMessage(`"<>&"`), nil},
		{"binary", []byte{0, 1, 0xff, '\r', '\n', '<', '"'}, nil},
		{"Latin-1 text", []byte("caf\xe9"), nil},
		{"empty", []byte{}, nil},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			jsonBus := newBus(t, withParams(testURL, "mode", m.mode), ns)
			rawBus := newBus(t, withParams(testURL, "mode", m.mode), ns, func(c *gossip.Config) { c.Codec = rawCodec{} })
			got := make(chan *gossip.Event, len(payloads))
			_, err := rawBus.Subscribe("roundtrip.data", func(ctx context.Context, e *gossip.Event) error {
				got <- e
				return nil
			}, gossip.Workers(1))
			require.NoError(t, err)
			want := map[string][]byte{}
			for _, p := range payloads {
				e := gossip.NewEvent("roundtrip.data", p.data)
				e.ID = p.name
				bus := jsonBus
				if b, ok := p.data.([]byte); ok {
					bus = rawBus
					want[p.name] = b
				} else {
					want[p.name] = p.data.(json.RawMessage)
				}
				require.NoError(t, bus.Publish(context.Background(), e), p.name)
			}
			for _, e := range collect(t, got, len(payloads), 10*time.Second, "the events") {
				var b []byte
				if raw, ok := e.Data.(json.RawMessage); ok {
					b = raw
				} else {
					require.NoError(t, e.Decode(&b), e.ID)
				}
				assert.True(t, bytes.Equal(want[e.ID], b), "%s: sent %q, received %q", e.ID, want[e.ID], b)
			}
		})
	}
}
