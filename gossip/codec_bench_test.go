package gossip

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/gossipbus/gossip/gossip/driver"
)

// benchPayload encodes to about 256 bytes of JSON, the payload size bench/
// uses.
type benchPayload struct {
	UserID    string   `json:"user_id"`
	Email     string   `json:"email"`
	Name      string   `json:"name"`
	Plan      string   `json:"plan"`
	Tags      []string `json:"tags"`
	Score     float64  `json:"score"`
	Active    bool     `json:"active"`
	CreatedAt int64    `json:"created_at"`
	Note      string   `json:"note"`
}

var samplePayload = benchPayload{
	UserID: "0199c0de-7a1b-7c3d-9e4f-a0b1c2d3e4f5", Email: "ada.lovelace@example.com",
	Name: "Ada Lovelace", Plan: "enterprise", Tags: []string{"beta", "eu-west", "vip"},
	Score: 98.6, Active: true, CreatedAt: 1767225600, Note: "first user of the analytical engine service",
}

// BenchmarkEncodeDecode measures the payload work on the wire transports'
// path: encoding in Publish, turning a delivery into an Event, and decoding
// it in a Typed handler; and, for comparison, the memory transport's path,
// which hands the value over without encoding.
func BenchmarkEncodeDecode(b *testing.B) {
	cs := newCodecSet(nil, nil)
	encoded, _, err := cs.encode(samplePayload)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("payload: %d bytes of JSON", len(encoded))
	wireSub := &Subscription{bus: &EventBus{codecs: cs}, cfg: subscribeConfig{maxDeliveries: 5}}
	memSub := &Subscription{bus: &EventBus{codecs: cs, inProcess: true}, cfg: subscribeConfig{maxDeliveries: 5}}
	msg := &driver.Message{ID: NewID(), Type: "user_service.user.created", Source: "bench",
		ContentType: "application/json", Data: encoded}
	memMsg := &driver.Message{ID: msg.ID, Type: msg.Type, Source: msg.Source, Value: samplePayload}
	typed := Typed(func(_ context.Context, _ *Event, p benchPayload) error {
		if p.UserID == "" {
			b.Fatal("empty payload")
		}
		return nil
	})
	ctx := context.Background()

	b.Run("encode_struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := cs.encode(samplePayload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode_raw_json", func(b *testing.B) {
		var raw any = json.RawMessage(encoded) // Event.Data is already an interface
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := cs.encode(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode_struct", func(b *testing.B) {
		e := wireSub.event(driver.Delivery{Message: msg, Attempt: 1})
		b.ReportAllocs()
		for b.Loop() {
			var p benchPayload
			if err := e.Decode(&p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire_delivery_typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e := wireSub.event(driver.Delivery{Message: msg, Attempt: 1})
			if err := typed(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire_roundtrip_typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, ct, err := cs.encode(samplePayload)
			if err != nil {
				b.Fatal(err)
			}
			m := &driver.Message{ID: msg.ID, Type: msg.Type, Source: msg.Source, ContentType: ct, Data: data}
			if err := typed(ctx, wireSub.event(driver.Delivery{Message: m, Attempt: 1})); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memory_delivery_typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := typed(ctx, memSub.event(driver.Delivery{Message: memMsg, Attempt: 1})); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNewEvent measures what every publish starts with: a fresh ID
// and timestamp.
func BenchmarkNewEvent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if e := NewEvent("user_service.user.created", samplePayload); e.ID == "" {
			b.Fatal("no ID")
		}
	}
}
