package cloudevents_test

import (
	"testing"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// benchMessage is a typical event: a 256-byte JSON payload, a trace
// context and one metadata key.
var benchMessage = &driver.Message{
	ID: "0199c0de-7a1b-7c3d-9e4f-a0b1c2d3e4f5", Type: "user_service.user.created", Source: "user_service",
	Time: time.Date(2026, 11, 30, 10, 0, 0, 123456789, time.UTC), ContentType: "application/json",
	Data: []byte(`{"user_id":"0199c0de-7a1b-7c3d-9e4f-a0b1c2d3e4f5","email":"ada.lovelace@example.com","name":"Ada Lovelace","plan":"enterprise","tags":["beta","eu-west","vip"],"score":98.6,"active":true,"created_at":1767225600,"note":"first user of the analytical engine service"}`),
	Metadata: map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tenant":      "acme",
	},
}

// BenchmarkBinary measures binary-mode encoding and decoding on the two
// bindings the drivers use: text headers (NATS) and binary-safe fields
// (Redis).
func BenchmarkBinary(b *testing.B) {
	for _, bc := range []struct {
		name string
		b    *cloudevents.Binding
	}{{"headers", &headers}, {"fields", &fields}} {
		ps := encode(bc.b, benchMessage)
		b.Run(bc.name+"/encode", func(b *testing.B) {
			n := 0
			set := func(name, value string) { n += len(name) + len(value) }
			b.ReportAllocs()
			for b.Loop() {
				bc.b.Encode(benchMessage, set)
			}
		})
		b.Run(bc.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d := bc.b.NewDecoder(benchMessage.Type, benchMessage.Data)
				for _, p := range ps {
					d.Add(p.name, p.value)
				}
				if _, err := d.Message(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStructured measures JSON structured-mode encoding and decoding.
func BenchmarkStructured(b *testing.B) {
	doc, err := cloudevents.EncodeStructured(benchMessage)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cloudevents.EncodeStructured(benchMessage); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fields.DecodeStructured(benchMessage.Type, doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
