package interop_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/gossipbus/gossip/drivers/nats"
	_ "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// wireMsg is one message as it travels: header or field names and values
// in order, and the body (NATS data, the Redis data field or payload).
type wireMsg struct {
	names, values []string
	body          []byte
}

// shape is how another producer writes an SDK event.
type shape struct {
	name  string
	write func(t *testing.T, e event.Event) wireMsg
}

// The shapes sdk-go's NATS bindings send, and the header-name case the
// spec allows (names are case-insensitive).
var (
	binaryJetStream = shape{"binary, ce-datacontenttype", func(t *testing.T, e event.Event) wireMsg {
		return binary(t, e, strings.ToLower, "ce-datacontenttype")
	}}
	binaryOtherCase = shape{"binary, Ce-Specversion and Content-Type", func(t *testing.T, e event.Event) wireMsg {
		return binary(t, e, func(s string) string { return "Ce-" + strings.ToUpper(s[3:4]) + s[4:] }, "Content-Type")
	}}
	structuredBare = shape{"structured, no content-type header", func(t *testing.T, e event.Event) wireMsg {
		return wireMsg{body: sdkJSON(t, e)}
	}}
	structuredLabelled = shape{"structured, Content-Type header", func(t *testing.T, e event.Event) wireMsg {
		return wireMsg{names: []string{"Content-Type"}, values: []string{event.ApplicationCloudEventsJSON}, body: sdkJSON(t, e)}
	}}
)

// binary writes e in binary mode: ce-<attribute> names through name, the
// content type under ctName, the data as the body.
func binary(t *testing.T, e event.Event, name func(string) string, ctName string) wireMsg {
	var w wireMsg
	add := func(n, v string) { w.names, w.values = append(w.names, n), append(w.values, v) }
	add(name("ce-specversion"), e.SpecVersion())
	add(name("ce-id"), e.ID())
	add(name("ce-type"), e.Type())
	add(name("ce-source"), e.Source())
	add(name("ce-time"), types.FormatTime(e.Time()))
	add(ctName, e.DataContentType())
	for k, v := range e.Extensions() {
		s, err := types.Format(v)
		require.NoError(t, err)
		add(name("ce-"+k), s)
	}
	w.body = e.Data()
	return w
}

// sdkJSON is e in the SDK's JSON format.
func sdkJSON(t *testing.T, e event.Event) []byte {
	b, err := json.Marshal(e)
	require.NoError(t, err)
	return b
}

// fromBinary builds the SDK event a binary-mode binding reads from w:
// ce-<attribute> names in any case, the content type from content-type or
// ce-datacontenttype; other names are not attributes.
func fromBinary(t *testing.T, w wireMsg) event.Event {
	e := event.New()
	for i, n := range w.names {
		n, v := strings.ToLower(n), w.values[i]
		switch n {
		case "content-type", "ce-datacontenttype":
			e.SetDataContentType(v)
		case "ce-specversion":
			e.SetSpecVersion(v)
		case "ce-id":
			e.SetID(v)
		case "ce-type":
			e.SetType(v)
		case "ce-source":
			e.SetSource(v)
		case "ce-time":
			tm, err := types.ParseTime(v)
			require.NoError(t, err, "ce-time %q", v)
			e.SetTime(tm)
		default:
			if a, ok := strings.CutPrefix(n, "ce-"); ok {
				require.NoError(t, e.Context.SetExtension(a, v), "header %s: the SDK refuses it as an extension", w.names[i])
			}
		}
	}
	e.DataEncoded = w.body
	return e
}

// mode is one transport mode: the bus URL, and a plain client's way to
// read what gossip writes and to write what another producer sends.
type mode struct {
	name   string
	url    string
	shapes []shape // what the transport can carry
	// watch starts reading the raw messages of event type typ; the func
	// it returns waits for the next one as the SDK reads it.
	watch func(t *testing.T, typ string) func() event.Event
	send  func(t *testing.T, typ string, w wireMsg)
}

var allShapes = []shape{binaryJetStream, binaryOtherCase, structuredBare, structuredLabelled}

func natsMode(t *testing.T, m string) mode {
	p := name(t)
	nc, err := natsgo.Connect(natsSrv.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return mode{
		name: "nats " + m, url: natsSrv.URL() + "?mode=" + m + "&prefix=" + p, shapes: allShapes,
		watch: func(t *testing.T, typ string) func() event.Event {
			ch := make(chan *natsgo.Msg, 16)
			sub, err := nc.ChanSubscribe(p+"."+typ, ch)
			require.NoError(t, err)
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			require.NoError(t, nc.Flush())
			return func() event.Event {
				select {
				case msg := <-ch:
					var w wireMsg
					for n, vs := range msg.Header {
						w.names, w.values = append(w.names, n), append(w.values, vs[0])
					}
					w.body = msg.Data
					if ct := msg.Header.Get("content-type"); ct == event.ApplicationCloudEventsJSON {
						return parseSDKJSON(t, msg.Data)
					}
					return fromBinary(t, w)
				case <-time.After(waitLimit):
					t.Fatalf("no message on %s within %v", p+"."+typ, waitLimit)
					return event.Event{}
				}
			}
		},
		send: func(t *testing.T, typ string, w wireMsg) {
			msg := natsgo.NewMsg(p + "." + typ)
			for i, n := range w.names {
				msg.Header[n] = []string{w.values[i]} // the name as written, in its case
			}
			msg.Data = w.body
			if m == "jetstream" {
				ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
				defer cancel()
				_, err := js.PublishMsg(ctx, msg)
				require.NoError(t, err)
				return
			}
			require.NoError(t, nc.PublishMsg(msg))
			require.NoError(t, nc.Flush())
		},
	}
}

func redisMode(t *testing.T, m string) mode {
	base := redisURL(t)
	p := name(t)
	rc := redisClient(t, base, p)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	md := mode{name: "redis " + m, url: base + sep + "mode=" + m + "&prefix=" + p}
	if m == "pubsub" {
		md.shapes = []shape{structuredBare} // a PUBLISH carries a payload, no headers
		md.watch = func(t *testing.T, typ string) func() event.Event {
			ps := rc.Subscribe(context.Background(), p+":"+typ)
			t.Cleanup(func() { _ = ps.Close() })
			_, err := ps.Receive(context.Background())
			require.NoError(t, err)
			return func() event.Event {
				ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
				defer cancel()
				msg, err := ps.ReceiveMessage(ctx)
				require.NoError(t, err)
				return parseSDKJSON(t, []byte(msg.Payload))
			}
		}
		md.send = func(t *testing.T, typ string, w wireMsg) {
			require.Empty(t, w.names, "Pub/Sub has no headers")
			require.NoError(t, rc.Publish(context.Background(), p+":"+typ, w.body).Err())
		}
		return md
	}
	md.shapes = allShapes
	md.watch = func(t *testing.T, typ string) func() event.Event {
		last := "0"
		return func() event.Event {
			res, err := rc.XRead(context.Background(), &goredis.XReadArgs{Streams: []string{p + ":{" + typ + "}:stream", last}, Count: 1, Block: waitLimit}).Result()
			require.NoError(t, err, "no stream entry within %v", waitLimit)
			x := res[0].Messages[0]
			last = x.ID
			var w wireMsg
			for k, v := range x.Values {
				if k == "data" {
					w.body = []byte(v.(string))
				} else {
					w.names, w.values = append(w.names, k), append(w.values, v.(string))
				}
			}
			return fromBinary(t, w)
		}
	}
	md.send = func(t *testing.T, typ string, w wireMsg) {
		fields := make([]any, 0, 2*len(w.names)+2)
		for i, n := range w.names {
			fields = append(fields, n, w.values[i])
		}
		fields = append(fields, "data", w.body)
		require.NoError(t, rc.XAdd(context.Background(), &goredis.XAddArgs{Stream: p + ":{" + typ + "}:stream", Values: fields}).Err())
	}
	return md
}

// parseSDKJSON reads a structured-mode body with the SDK's JSON format.
func parseSDKJSON(t *testing.T, body []byte) event.Event {
	var e event.Event
	require.NoError(t, json.Unmarshal(body, &e), "the SDK refuses gossip's structured event: %s", body)
	return e
}

func modes(t *testing.T) []func(t *testing.T) mode {
	return []func(t *testing.T) mode{
		func(t *testing.T) mode { return natsMode(t, "jetstream") },
		func(t *testing.T) mode { return natsMode(t, "core") },
		func(t *testing.T) mode { return redisMode(t, "streams") },
		func(t *testing.T) mode { return redisMode(t, "pubsub") },
	}
}

var modeNames = []string{"nats_jetstream", "nats_core", "redis_streams", "redis_pubsub"}

func newBus(t *testing.T, url string) *gossip.EventBus {
	bus, err := gossip.NewEventBus(&gossip.Config{Driver: url, Source: "gossip-interop"})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, bus.Shutdown(ctx))
	})
	return bus
}

// What gossip publishes, the SDK reads and validates on every transport
// mode: the attributes, the data, and metadata as extension attributes
// (a key that is no extension name in binary mode as a header the SDK
// leaves alone, in structured mode inside the string gossipmetadata).
func TestSDKReadsWhatGossipPublishes(t *testing.T) {
	for i, mk := range modes(t) {
		t.Run(modeNames[i], func(t *testing.T) {
			m := mk(t)
			bus := newBus(t, m.url)
			const typ = "user.created"
			next := m.watch(t, typ)
			ev := gossip.NewEvent(typ, map[string]string{"email": "a@example.com"}).
				WithMetadata("tenant", "acme").
				WithMetadata("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").
				WithMetadata("Tenant-ID", "7").
				WithMetadata("id", "not the event's").
				WithKey("order-7").WithMetadata(gossip.MetaCorrelationID, "c-1")
			require.NoError(t, bus.Publish(context.Background(), ev))

			e := next()
			require.NoError(t, e.Validate(), "the SDK validates what gossip wrote")
			assert.Equal(t, "1.0", e.SpecVersion())
			assert.Equal(t, ev.ID, e.ID())
			assert.Equal(t, typ, e.Type())
			assert.Equal(t, "gossip-interop", e.Source())
			assert.True(t, e.Time().Equal(ev.Timestamp), "time %v, published %v", e.Time(), ev.Timestamp)
			assert.Equal(t, "application/json", e.DataContentType())
			assert.JSONEq(t, `{"email":"a@example.com"}`, string(e.Data()))
			ext := e.Extensions()
			assert.Equal(t, "acme", ext["tenant"], "an extension name is an extension attribute")
			assert.Equal(t, "order-7", ext["partitionkey"], "the ordering key is the partitionkey extension")
			assert.Equal(t, "c-1", ext["correlationid"], "the correlation extension")
			if m.name == "redis pubsub" {
				assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ext["traceparent"])
				s, ok := ext["gossipmetadata"].(string)
				require.True(t, ok, "gossipmetadata is a string attribute: %#v", ext["gossipmetadata"])
				assert.JSONEq(t, `{"Tenant-ID":"7","id":"not the event's"}`, s)
			}

			// The SDK's JSON format takes it back as it is.
			var again event.Event
			require.NoError(t, json.Unmarshal(sdkJSON(t, e), &again))
			require.NoError(t, again.Validate())
			assert.Equal(t, e.ID(), again.ID())

			// Metadata at the edges of gossip's rule: the SDK still accepts
			// every attribute gossip writes.
			hostile := gossip.NewEvent(typ, 1).
				WithMetadata("Tenant Name", "Acme Inc").WithMetadata("ключ", "värde ✓").
				WithMetadata("note", "line1\r\nline2").WithMetadata("padded", "  x  ").
				WithMetadata("empty", "").WithMetadata("tracestate", "").
				WithMetadata("averyveryverylongname1", "21 bytes: no extension name").
				WithMetadata("gossipmetadata", `{"not":"mine"}`)
			require.NoError(t, bus.Publish(context.Background(), hostile))
			e = next()
			require.NoError(t, e.Validate())
			assert.Equal(t, hostile.ID, e.ID())
			require.NoError(t, json.Unmarshal(sdkJSON(t, e), &again))
			for name, v := range e.Extensions() {
				assert.IsType(t, "", v, "extension %s", name)
			}
		})
	}
}

// What the SDK builds, written the way its bindings send it, gossip
// handles on every transport mode with its ID, source, time, data and
// extensions; the subject, stream or channel names the event's type, and a
// ce-type that differs is the metadata ce-type.
func TestGossipReadsWhatTheSDKSends(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 30, 0, 123456789, time.UTC)
	for i, mk := range modes(t) {
		t.Run(modeNames[i], func(t *testing.T) {
			m := mk(t)
			bus := newBus(t, m.url)
			const typ = "user.signup"
			got := make(chan *gossip.Event, 16)
			_, err := bus.Subscribe(typ, func(ctx context.Context, e *gossip.Event) error {
				got <- e
				return nil
			})
			require.NoError(t, err)

			for _, sh := range m.shapes {
				for _, foreign := range []bool{false, true} {
					name := sh.name
					e := event.New()
					e.SetID("sdk-" + strings.NewReplacer(" ", "-", ",", "").Replace(name))
					e.SetType(typ)
					e.SetSource("/billing/sdk-go")
					e.SetTime(at)
					e.SetExtension("tenant", "acme")
					e.SetExtension("partitionkey", "p7")
					if foreign {
						name += ", foreign type, text data"
						e.SetID(e.ID() + "-foreign")
						e.SetType("com.example.user.signup")
						require.NoError(t, e.SetData("text/plain", "hello, gossip"))
					} else {
						require.NoError(t, e.SetData(event.ApplicationJSON, map[string]string{"email": "b@example.com"}))
					}
					require.NoError(t, e.Validate())
					m.send(t, typ, sh.write(t, e))

					var h *gossip.Event
					select {
					case h = <-got:
					case <-time.After(waitLimit):
						t.Fatalf("%s: not handled within %v", name, waitLimit)
					}
					assert.Equal(t, e.ID(), h.ID, name)
					assert.Equal(t, gossip.EventType(typ), h.Type, name)
					assert.Equal(t, "/billing/sdk-go", h.Source, name)
					assert.True(t, h.Timestamp.Equal(at), "%s: time %v", name, h.Timestamp)
					assert.Equal(t, "acme", h.Metadata["tenant"], name)
					assert.Equal(t, "p7", h.Key(), name)
					if foreign {
						assert.Equal(t, "com.example.user.signup", h.Metadata[cloudevents.MetaForeignType], name)
						var s string
						require.NoError(t, h.Decode(&s), name)
						assert.Equal(t, "hello, gossip", s, name)
					} else {
						assert.NotContains(t, h.Metadata, cloudevents.MetaForeignType, name)
						var v map[string]string
						require.NoError(t, h.Decode(&v), name)
						assert.Equal(t, map[string]string{"email": "b@example.com"}, v, name)
					}
				}
			}
		})
	}
}
