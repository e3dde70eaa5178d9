package gossip

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/gossipbus/gossip/internal/benchdata"

	"github.com/gossipbus/gossip/gossip/driver"
)

// BenchmarkEncodeDecode measures the payload work on the wire transports'
// path: encoding in Publish, turning a delivery into an Event, and decoding
// it in a Typed handler; and, for comparison, the memory transport's path,
// which hands the value over without encoding.
func BenchmarkEncodeDecode(b *testing.B) {
	cs := newCodecSet(nil, nil)
	encoded, _, err := cs.encode(benchdata.Sample)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("payload: %d bytes of JSON", len(encoded))
	wireSub := &Subscription{bus: &EventBus{codecs: cs}, cfg: subscribeConfig{maxDeliveries: 5}}
	memSub := &Subscription{bus: &EventBus{codecs: cs, inProcess: true}, cfg: subscribeConfig{maxDeliveries: 5}}
	msg := &driver.Message{ID: NewID(), Type: "user_service.user.created", Source: "bench",
		ContentType: "application/json", Data: encoded}
	memMsg := &driver.Message{ID: msg.ID, Type: msg.Type, Source: msg.Source, Value: benchdata.Sample}
	typed := Typed(func(_ context.Context, _ *Event, p benchdata.Payload) error {
		if p.UserID == "" {
			b.Fatal("empty payload")
		}
		return nil
	})
	ctx := context.Background()

	b.Run("encode_struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := cs.encode(benchdata.Sample); err != nil {
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
		e := &wireSub.event(driver.Delivery{Message: msg, Attempt: 1}).Event
		b.ReportAllocs()
		for b.Loop() {
			var p benchdata.Payload
			if err := e.Decode(&p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire_delivery_typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e := &wireSub.event(driver.Delivery{Message: msg, Attempt: 1}).Event
			if err := typed(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire_roundtrip_typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, ct, err := cs.encode(benchdata.Sample)
			if err != nil {
				b.Fatal(err)
			}
			m := &driver.Message{ID: msg.ID, Type: msg.Type, Source: msg.Source, ContentType: ct, Data: data}
			if err := typed(ctx, &wireSub.event(driver.Delivery{Message: m, Attempt: 1}).Event); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memory_delivery_typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := typed(ctx, &memSub.event(driver.Delivery{Message: memMsg, Attempt: 1}).Event); err != nil {
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
		if e := NewEvent("user_service.user.created", benchdata.Sample); e.ID == "" {
			b.Fatal("no ID")
		}
	}
}
