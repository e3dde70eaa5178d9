package nats_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	natsdriver "github.com/gossipbus/gossip/drivers/nats"
	"github.com/gossipbus/gossip/gossip"
)

type signup struct {
	Email string `json:"email"`
}

// A plain NATS subscriber that knows nothing of gossip reads its events as
// CloudEvents in binary mode.
func TestInteropPlainSubscriberReadsCloudEventHeaders(t *testing.T) {
	p := prefix(t)
	bus := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + p, Source: "users"})
	nc, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	defer nc.Close()
	got := make(chan *natsgo.Msg, 1)
	sub, err := nc.Subscribe(p+".user.created", func(m *natsgo.Msg) { got <- m })
	require.NoError(t, err)
	defer sub.Unsubscribe()
	require.NoError(t, nc.Flush())

	ev := gossip.NewEvent("user.created", signup{Email: "a@example.com"}).
		WithMetadata("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").
		WithMetadata("tenant", "acme").WithKey("order-7")
	require.NoError(t, bus.Publish(context.Background(), ev))
	m := recv(t, got, 5*time.Second, "the plain subscriber's message")
	assert.Equal(t, "1.0", m.Header.Get("ce-specversion"))
	assert.Equal(t, ev.ID, m.Header.Get("ce-id"))
	assert.Equal(t, "user.created", m.Header.Get("ce-type"))
	assert.Equal(t, "users", m.Header.Get("ce-source"))
	ts, err := time.Parse(time.RFC3339Nano, m.Header.Get("ce-time"))
	require.NoError(t, err)
	assert.True(t, ts.Equal(ev.Timestamp))
	assert.Equal(t, "application/json", m.Header.Get("content-type"))
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", m.Header.Get("traceparent"))
	assert.Equal(t, "acme", m.Header.Get("ce-tenant"))
	assert.Equal(t, "order-7", m.Header.Get("ce-partitionkey"), "the ordering key is the partitionkey extension")
	assert.Equal(t, "user.created:"+ev.ID, m.Header.Get("Nats-Msg-Id"))
	var body signup
	require.NoError(t, json.Unmarshal(m.Data, &body))
	assert.Equal(t, "a@example.com", body.Email)
}

// gossip reads CloudEvents another producer published with plain nats.go,
// in binary and structured mode, and dead-letters what is not one while the
// rest flows on.
func TestInteropForeignProducer(t *testing.T) {
	p := prefix(t)
	bus := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + p})
	got := make(chan signup, 2)
	_, err := bus.Subscribe("user.>", gossip.Typed(func(ctx context.Context, e *gossip.Event, s signup) error {
		got <- s
		return nil
	}), gossip.Group("mailer"))
	require.NoError(t, err)
	dead := make(chan *gossip.Event, 1)
	_, err = bus.Subscribe(gossip.DeadLetterType("mailer", "user.>"), func(ctx context.Context, e *gossip.Event) error {
		dead <- e
		return nil
	})
	require.NoError(t, err)

	nc, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()

	garbage := natsgo.NewMsg(p + ".user.garbage")
	garbage.Data = []byte("\x00\x01 not an event")
	_, err = js.PublishMsg(ctx, garbage)
	require.NoError(t, err)

	binary := natsgo.NewMsg(p + ".user.created")
	binary.Header.Set("ce-specversion", "1.0")
	binary.Header.Set("ce-id", "other-1")
	binary.Header.Set("ce-type", "user.created")
	binary.Header.Set("ce-source", "/other/producer")
	binary.Header.Set("content-type", "application/json")
	binary.Data = []byte(`{"email":"binary@example.com"}`)
	_, err = js.PublishMsg(ctx, binary)
	require.NoError(t, err)

	structured := natsgo.NewMsg(p + ".user.created")
	structured.Header.Set("content-type", "application/cloudevents+json")
	structured.Data = []byte(`{"specversion":"1.0","id":"other-2","type":"user.created","source":"/other","data":{"email":"structured@example.com"}}`)
	_, err = js.PublishMsg(ctx, structured)
	require.NoError(t, err)

	emails := map[string]bool{}
	for range 2 {
		emails[recv(t, got, 10*time.Second, "a foreign CloudEvent").Email] = true
	}
	assert.Equal(t, map[string]bool{"binary@example.com": true, "structured@example.com": true}, emails)

	dl := recv(t, dead, 10*time.Second, "the garbage message's dead letter")
	info, ok := gossip.DeadLetterInfo(dl)
	require.True(t, ok)
	assert.Equal(t, gossip.EventType("user.garbage"), info.OriginalType)
	assert.Contains(t, info.Error, "not a CloudEvent")
	raw, ok := dl.Data.([]byte)
	require.True(t, ok, "the dead letter's data is the raw body, %T", dl.Data)
	assert.Equal(t, "\x00\x01 not an event", string(raw), "the dead letter keeps the raw body")
}

// An unreachable server is an error within a bounded time that names the
// address and never the password.
func TestUnreachableServer(t *testing.T) {
	start := time.Now()
	_, err := gossip.NewEventBus(&gossip.Config{Driver: "nats://alice:TOPSECRET-s3cret@127.0.0.1:1", DialTimeout: 3 * time.Second, Logger: quiet})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Contains(t, err.Error(), "127.0.0.1:1")
	assert.NotContains(t, err.Error(), "TOPSECRET")
}

// A bad parameter is an error naming it.
func TestBadURLParameter(t *testing.T) {
	_, err := gossip.NewEventBus(&gossip.Config{Driver: shared.URL() + "?mode=fast", Logger: quiet})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "mode")
}

// The stream is a namespace: buses with different prefixes on one server
// never see each other's events.
func TestPrefixesAreNamespaces(t *testing.T) {
	a := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + prefix(t)})
	b := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + prefix(t)})
	la, lb := newLedger(), newLedger()
	_, err := a.Subscribe("x", la.handler, gossip.Group("g"))
	require.NoError(t, err)
	_, err = b.Subscribe("x", lb.handler, gossip.Group("g"))
	require.NoError(t, err)
	ea, eb := gossip.NewEvent("x", 1), gossip.NewEvent("x", 2)
	require.NoError(t, a.Publish(context.Background(), ea))
	require.NoError(t, b.Publish(context.Background(), eb))
	la.waitFor(t, []string{ea.ID}, 10*time.Second)
	lb.waitFor(t, []string{eb.ID}, 10*time.Second)
	assert.False(t, la.has(eb.ID))
	assert.False(t, lb.has(ea.ID))
}

// A ready *nats.Conn can be handed in; the bus reports "nats".
func TestReadyConnection(t *testing.T) {
	nc, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	defer nc.Close()
	conn, err := natsdriver.New(nc, natsdriver.StreamPrefix(prefix(t)))
	require.NoError(t, err)
	bus := newBus(t, gossip.Config{Conn: conn})
	assert.Equal(t, "nats", bus.Transport())
	l := newLedger()
	_, err = bus.Subscribe("ready.conn", l.handler)
	require.NoError(t, err)
	ev := gossip.NewEvent("ready.conn", "x")
	require.NoError(t, bus.Publish(context.Background(), ev))
	l.waitFor(t, []string{ev.ID}, 10*time.Second)
	require.NoError(t, bus.Shutdown(context.Background()))
	assert.False(t, nc.IsClosed(), "the application's connection stays open")
}

// A stream the operator pre-created is used as it is; with CreateStreams
// off a missing one is a clear error.
func TestPreCreatedStream(t *testing.T) {
	p := prefix(t)
	nc, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "OPS_" + p, Subjects: []string{p + ".>"}, MaxAge: time.Hour, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	defer js.DeleteStream(ctx, "OPS_"+p)

	bus := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + p + "&stream=OPS_" + p + "&create_stream=false"})
	l := newLedger()
	_, err = bus.Subscribe("a", l.handler, gossip.Group("g"))
	require.NoError(t, err)
	ev := gossip.NewEvent("a", 1)
	require.NoError(t, bus.Publish(ctx, ev))
	l.waitFor(t, []string{ev.ID}, 10*time.Second)
	info, err := js.Stream(ctx, "OPS_"+p)
	require.NoError(t, err)
	assert.Equal(t, time.Hour, info.CachedInfo().Config.MaxAge, "the operator's limits are kept")

	// A missing stream the driver may not make is found at open.
	_, err = gossip.NewEventBus(&gossip.Config{Driver: shared.URL() + "?prefix=" + prefix(t) + "&create_stream=false", Logger: quiet})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "not found"), err.Error())
	assert.False(t, errors.Is(err, context.DeadlineExceeded))
}
