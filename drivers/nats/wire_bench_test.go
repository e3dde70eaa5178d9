package nats

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/gossipbus/gossip/drivers/nats/natsserver"
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
// (encode: the nats.Msg and the header block nats.go writes) and one
// delivery (decode: from the header block as nats.go reads it), without a
// server.
func BenchmarkWire(b *testing.B) {
	m := benchMessage()
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			msg := encodeMessage("p."+m.Type, m, "x")
			if len(msg.Header) == 0 {
				b.Fatal("no headers")
			}
			msg.release() // as Publish does once nats.go is done with it
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

// benchServer starts an embedded server for one benchmark.
func benchServer(b *testing.B) string {
	b.Helper()
	srv, err := natsserver.Start(natsserver.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	return srv.URL()
}

// benchConn opens a driver connection with the URL parameters query.
func benchConn(b *testing.B, url, query string) *Conn {
	b.Helper()
	p := fmt.Sprintf("bench%x", rand.Uint32())
	dc, err := Driver{}.Open(context.Background(), url+"?prefix="+p+"&"+query, driver.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = dc.Close(context.Background()) })
	return dc.(*Conn)
}

// BenchmarkPublish measures Conn.Publish to an embedded server, per event:
// one event per call, and batches of 100 in JetStream mode.
func BenchmarkPublish(b *testing.B) {
	url := benchServer(b)
	for _, tc := range []struct {
		name, query string
		batch       int
	}{
		{"core", "mode=core", 1},
		{"core-flush-sync", "mode=core&flush=sync", 1},
		{"jetstream", "storage=memory", 1},
		{"jetstream-batch100", "storage=memory", 100},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := benchConn(b, url, tc.query)
			ctx := context.Background()
			msgs := make([]*driver.Message, tc.batch)
			for j := range msgs {
				msgs[j] = benchMessage()
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j, m := range msgs {
					m.ID = strconv.Itoa(i*tc.batch + j) // distinct: JetStream de-duplicates by ID
				}
				if err := c.Publish(ctx, msgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tc.batch), "ns/event")
		})
	}
}

// BenchmarkDelivery measures a message on the wire to a driver.Delivery out
// of a subscription (acknowledged, in JetStream mode), per message. Another
// connection publishes the same encoded message with plain nats.go, at most
// window messages ahead of the subscription, so that core mode drops none.
func BenchmarkDelivery(b *testing.B) {
	url := benchServer(b)
	for _, tc := range []struct{ name, query string }{
		{"core", "mode=core"},
		{"jetstream", "storage=memory"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const window = 512
			c := benchConn(b, url, tc.query)
			ctx := context.Background()
			sub, err := c.Subscribe(ctx, driver.SubscribeSpec{Pattern: "user_service.>", BufferSize: 2 * window,
				Workers: 1, AckWait: time.Minute, Dropped: func(n int) { b.Errorf("%d dropped", n) }})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = sub.Stop(ctx); _ = sub.Close(ctx) })
			acker, _ := sub.(driver.Acker)
			nc, err := natsgo.Connect(url)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			m := benchMessage()
			msg := encodeMessage(c.Subject(m.Type), m, "")
			b.ReportAllocs()
			b.ResetTimer()
			credit, published := publishAhead(b, nc, &msg.Msg, window)
			for range b.N {
				d := <-sub.Deliveries()
				<-credit
				if d.Err != nil {
					b.Fatal(d.Err)
				}
				if acker != nil {
					if err := acker.Ack(ctx, []driver.Delivery{d}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			if err := published(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRawHeaders measures plain nats.go, without gossip, moving the
// body of a typed event from one connection to an async subscription on
// another through an embedded server, per message: with no headers (what
// the bench's raw client sends), with the CloudEvents binary-mode headers
// gossip writes for an event without metadata, and with those but
// content-type (the price of one header). The differences are what the
// wire format costs any client, whatever the bus on top: nats.go builds
// the header block from a map on publish and parses it into a map on
// delivery, and the server scans it.
func BenchmarkRawHeaders(b *testing.B) {
	url := benchServer(b)
	m := benchMessage()
	m.Metadata = nil
	ce := encodeMessage("raw.headers", m, "")
	withoutCT := natsgo.Header{}
	for k, v := range ce.Header {
		if k != HeaderContentType {
			withoutCT[k] = v
		}
	}
	for _, tc := range []struct {
		name   string
		header natsgo.Header
	}{{"none", nil}, {"cloudevents", ce.Header}, {"cloudevents-no-content-type", withoutCT}} {
		b.Run(tc.name, func(b *testing.B) {
			const window = 512
			sc, err := natsgo.Connect(url)
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Close()
			got := make(chan struct{}, window)
			sub, err := sc.Subscribe("raw.headers", func(*natsgo.Msg) { got <- struct{}{} })
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			if err := sc.Flush(); err != nil {
				b.Fatal(err)
			}
			pc, err := natsgo.Connect(url)
			if err != nil {
				b.Fatal(err)
			}
			defer pc.Close()
			msg := &natsgo.Msg{Subject: "raw.headers", Header: tc.header, Data: m.Data}
			b.ReportAllocs()
			b.ResetTimer()
			credit, published := publishAhead(b, pc, msg, window)
			for range b.N {
				<-got
				<-credit
			}
			b.StopTimer()
			if err := published(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// publishAhead publishes msg b.N times on nc from a goroutine of its own,
// at most window messages ahead of the reader, which takes one credit per
// message it got. published waits for the publisher's end: its error, or
// the flush's.
func publishAhead(b *testing.B, nc *natsgo.Conn, msg *natsgo.Msg, window int) (credit <-chan struct{}, published func() error) {
	credits := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		for range b.N {
			credits <- struct{}{}
			if err := nc.PublishMsg(msg); err != nil {
				done <- err
				return
			}
		}
		done <- nc.Flush()
	}()
	return credits, func() error { return <-done }
}
