package nats

import (
	"testing"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// benchMessage is an event as gossip publishes it: a JSON payload of about
// 256 bytes, trace context and one metadata entry.
func benchMessage() *driver.Message {
	return &driver.Message{
		ID: "0199c0de-7a1b-7c3d-9e4f-a0b1c2d3e4f5", Type: "user_service.user.created", Source: "user-service",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), ContentType: "application/json",
		Data: make([]byte, 256),
		Metadata: map[string]string{
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"tenant":      "acme",
		},
	}
}

// BenchmarkWire measures the CloudEvents binary-mode work of one publish
// (encode) and one delivery (decode), without a server.
func BenchmarkWire(b *testing.B) {
	m := benchMessage()
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if msg := encodeMessage("p."+m.Type, m, "x"); len(msg.Header) == 0 {
				b.Fatal("no headers")
			}
		}
	})
	msg := encodeMessage("p."+m.Type, m, m.Type+":"+m.ID)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeMessage(m.Type, msg.Header, msg.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
