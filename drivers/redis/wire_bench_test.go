package redis

import (
	"context"
	"testing"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// benchMessage is an event as gossip publishes it: a JSON payload of about
// 256 bytes, trace context and one metadata entry.
func benchMessage() *driver.Message {
	data := []byte(`{"user_id":"0199c0de-7a1b-7c3d-9e4f-a0b1c2d3e4f5","email":"ada.lovelace@example.com",` +
		`"name":"Ada Lovelace","plan":"enterprise","tags":["beta","eu-west","vip"],"score":98.6,"active":true,` +
		`"created_at":1767225600,"note":"first user of the analytical engine service"}`)
	return &driver.Message{
		ID: "0199c0de-7a1b-7c3d-9e4f-a0b1c2d3e4f5", Type: "user_service.user.created", Source: "user-service",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), ContentType: "application/json",
		Data: data,
		Metadata: map[string]string{
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"tenant":      "acme",
		},
	}
}

// BenchmarkWire measures the CloudEvents work of one publish (encode) and
// one delivery (decode) in both modes, without a server.
func BenchmarkWire(b *testing.B) {
	m := benchMessage()
	b.Run("stream_encode", func(b *testing.B) {
		b.ReportAllocs()
		ctx, maxLen := context.Background(), int64(100000)
		start := cpuTime()
		for b.Loop() {
			if cmd := xadd(ctx, "gossip:{user_service.user.created}:stream", &maxLen, m); len(cmd.Args()) == 0 {
				b.Fatal("no fields")
			}
		}
		reportCPU(b, cpuTime()-start)
	})
	entry := entryWritten(m) // as go-redis hands an entry over
	b.Run("stream_decode", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			if _, err := decodeEntry(m.Type, entry); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpuTime()-start)
	})
	b.Run("pubsub_encode", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			if _, err := cloudevents.EncodeStructured(m); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpuTime()-start)
	})
	payload, err := cloudevents.EncodeStructured(m)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("pubsub_decode", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			if _, err := decodeStructured(m.Type, payload); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpuTime()-start)
	})
}
