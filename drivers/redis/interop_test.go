package redis_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// An entry another producer writes with plain XADD in the documented format
// is consumed like one gossip published; a garbage entry is dead-lettered
// with the reason, and the entries after it flow on.
func TestInteropStreamEntries(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	typ := gossip.EventType("interop.invoice.paid")
	key := ns + ":{" + string(typ) + "}:stream"
	bus := newBus(t, testURL, ns)

	type invoice struct {
		Number string  `json:"number"`
		Amount float64 `json:"amount"`
	}
	got := make(chan *gossip.Event, 4)
	paid := make(chan invoice, 4)
	_, err := bus.Subscribe(typ, gossip.Typed(func(ctx context.Context, e *gossip.Event, v invoice) error {
		got <- e
		paid <- v
		return nil
	}), gossip.Group("accounting"), gossip.Workers(1)) // the test reads them in order
	require.NoError(t, err)
	dead := make(chan *gossip.Event, 4)
	_, err = bus.Subscribe(gossip.DeadLetterType("accounting", typ), func(ctx context.Context, e *gossip.Event) error {
		dead <- e
		return nil
	})
	require.NoError(t, err)

	rc := plainClient(t)
	ctx := context.Background()
	xadd := func(values ...any) {
		require.NoError(t, rc.XAdd(ctx, &goredis.XAddArgs{Stream: key, Values: values}).Err())
	}
	xadd("ce-specversion", "1.0", "ce-id", "inv-1", "ce-type", string(typ), "ce-source", "billing-py",
		"ce-time", "2024-05-01T12:30:00.123456Z", "content-type", "application/json",
		"meta-tenant", "acme", "meta-ключ", "значение", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"ce-partitionkey", "p7", "data", `{"number":"A-17","amount":12.5}`)
	xadd("foo", "bar", "data", "not an event")
	xadd("ce-specversion", "1.0", "ce-id", "inv-2", "ce-type", string(typ), "ce-source", "billing-py",
		"content-type", "application/json", "data", `{"number":"A-18","amount":3}`)

	first := collect(t, got, 1, 10*time.Second, "the first entry")[0]
	assert.Equal(t, "inv-1", first.ID)
	assert.Equal(t, typ, first.Type)
	assert.Equal(t, "billing-py", first.Source)
	assert.True(t, first.Timestamp.Equal(time.Date(2024, 5, 1, 12, 30, 0, 123456000, time.UTC)), "time %v", first.Timestamp)
	assert.Equal(t, "acme", first.Metadata["tenant"])
	assert.Equal(t, "значение", first.Metadata["ключ"])
	assert.Equal(t, "p7", first.Metadata["partitionkey"], "an extension attribute becomes metadata")
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", first.Metadata["traceparent"])
	assert.Equal(t, invoice{"A-17", 12.5}, <-paid)

	letter := collect(t, dead, 1, 10*time.Second, "the garbage entry's dead letter")[0]
	info, ok := gossip.DeadLetterInfo(letter)
	require.True(t, ok)
	assert.Contains(t, info.Error, "no ce-specversion field")
	assert.Equal(t, typ, info.OriginalType)
	assert.Equal(t, 1, info.Deliveries)

	second := collect(t, got, 1, 10*time.Second, "the entry after the garbage")[0]
	assert.Equal(t, "inv-2", second.ID)
	assert.Equal(t, invoice{"A-18", 3}, <-paid)
}

// What gossip writes is the documented format, readable with plain XRANGE.
func TestStreamEntryFormat(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	bus := newBus(t, testURL, ns)
	e := gossip.NewEvent("format.user.created", map[string]string{"name": "ada"}).
		WithMetadata("tenant", "acme").WithMetadata("Tenant-ID", "7").
		WithMetadata("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").WithKey("order-7")
	require.NoError(t, bus.Publish(context.Background(), e))

	rc := plainClient(t)
	msgs, err := rc.XRange(context.Background(), ns+":{format.user.created}:stream", "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	v := msgs[0].Values
	assert.Equal(t, "1.0", v["ce-specversion"])
	assert.Equal(t, e.ID, v["ce-id"])
	assert.Equal(t, "format.user.created", v["ce-type"])
	assert.Equal(t, "redis-test", v["ce-source"])
	assert.Equal(t, e.Timestamp.UTC().Format(time.RFC3339Nano), v["ce-time"])
	assert.Equal(t, "application/json", v["content-type"])
	assert.Equal(t, "acme", v["ce-tenant"], "an extension name is an extension attribute")
	assert.Equal(t, "7", v["meta-Tenant-ID"], "another key is meta-<key>")
	assert.Equal(t, "order-7", v["ce-partitionkey"], "the ordering key is the partitionkey extension")
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", v["traceparent"])
	assert.JSONEq(t, `{"name":"ada"}`, v["data"].(string))

	types, err := rc.SMembers(context.Background(), ns+":types").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"format.user.created"}, types, "the type registry")
}

// In Pub/Sub mode a structured JSON CloudEvent another producer PUBLISHes is
// consumed; a garbage payload is dead-lettered and others flow on.
func TestInteropPubSubMessages(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	typ := gossip.EventType("interop.ping")
	bus := newBus(t, withParams(testURL, "mode", "pubsub"), ns)
	got := make(chan *gossip.Event, 4)
	_, err := bus.Subscribe("interop.*", func(ctx context.Context, e *gossip.Event) error {
		got <- e
		return nil
	}, gossip.Workers(1)) // the test reads them in publish order
	require.NoError(t, err)
	dead := make(chan *gossip.Event, 4)
	_, err = bus.Subscribe(gossip.DeadLetterType("", typ), func(ctx context.Context, e *gossip.Event) error {
		dead <- e
		return nil
	})
	require.NoError(t, err)

	rc := plainClient(t)
	ctx := context.Background()
	channel := ns + ":" + string(typ)
	require.NoError(t, rc.Publish(ctx, channel, `{"specversion":"1.0","id":"p-1","type":"interop.ping","source":"node",`+
		`"time":"2024-05-01T12:30:00Z","datacontenttype":"application/json","data":{"n":1},"region":"eu","gossipmetadata":{"k":"v"}}`).Err())
	require.NoError(t, rc.Publish(ctx, channel, `garbage`).Err())
	require.NoError(t, rc.Publish(ctx, channel, `{"specversion":"1.0","id":"p-2","type":"interop.ping","source":"node",`+
		`"datacontenttype":"text/plain","data_base64":"aGVsbG8="}`).Err())

	first := collect(t, got, 1, 10*time.Second, "the first message")[0]
	assert.Equal(t, "p-1", first.ID)
	assert.Equal(t, "eu", first.Metadata["region"])
	assert.Equal(t, "v", first.Metadata["k"])
	var data map[string]int
	require.NoError(t, first.Decode(&data))
	assert.Equal(t, 1, data["n"])

	letter := collect(t, dead, 1, 10*time.Second, "the garbage's dead letter")[0]
	info, _ := gossip.DeadLetterInfo(letter)
	assert.Contains(t, info.Error, "not a CloudEvents entry")

	second := collect(t, got, 1, 10*time.Second, "the message after the garbage")[0]
	assert.Equal(t, "p-2", second.ID)
	assert.Equal(t, []byte("hello"), second.Data, "data_base64 of a non-JSON content type arrives as bytes")
}

// What gossip PUBLISHes is a structured-mode JSON CloudEvent.
func TestPubSubPayloadFormat(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	bus := newBus(t, withParams(testURL, "mode", "pubsub"), ns)
	rc := plainClient(t)
	ps := rc.Subscribe(context.Background(), ns+":format.ping")
	defer ps.Close()
	_, err := ps.Receive(context.Background())
	require.NoError(t, err)
	e := gossip.NewEvent("format.ping", []int{1, 2}).WithMetadata("with space", "x").WithMetadata("tenant", "acme").WithKey("order-7")
	require.NoError(t, bus.Publish(context.Background(), e))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := ps.ReceiveMessage(ctx)
	require.NoError(t, err)
	var ce map[string]any
	require.NoError(t, json.Unmarshal([]byte(msg.Payload), &ce))
	assert.Equal(t, "1.0", ce["specversion"])
	assert.Equal(t, e.ID, ce["id"])
	assert.Equal(t, "format.ping", ce["type"])
	assert.Equal(t, "application/json", ce["datacontenttype"])
	assert.Equal(t, []any{1.0, 2.0}, ce["data"])
	assert.Equal(t, "acme", ce["tenant"], "an extension name is an extension attribute")
	assert.Equal(t, "order-7", ce["partitionkey"], "the ordering key is the partitionkey extension")
	assert.Equal(t, `{"with space":"x"}`, ce["gossipmetadata"], "other keys: the JSON text of an object")
}

// Open's errors: an unreachable server is named (never the password) with a
// hint, within the dial timeout; bad parameters are named.
func TestOpenErrors(t *testing.T) {
	port := freePort(nil) // nothing listens there
	start := time.Now()
	_, err := gossip.NewEventBus(&gossip.Config{
		Driver:      "redis://app:TOPSECRET-pw@127.0.0.1:" + itoa(port) + "/0",
		DialTimeout: 3 * time.Second, Logger: discard,
	})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	msg := err.Error()
	assert.NotContains(t, msg, "TOPSECRET-pw")
	assert.Contains(t, msg, "127.0.0.1:"+itoa(port))
	assert.Contains(t, msg, "redis-server --port "+itoa(port))
	assert.NotContains(t, msg, "\n", "one line")

	for _, tc := range []struct{ url, want string }{
		{"redis://127.0.0.1:1/0?mode=fast", `unknown mode "fast"`},
		{"redis://127.0.0.1:1/0?maxlen=lots", "bad maxlen"},
		{"redis://127.0.0.1:1/0?block=soon", "bad block"},
		{"redis://127.0.0.1:1/0?prefix=a{b}", "must not contain"},
		{"redis://:pw-TOPSECRET@127.0.0.1:1/0?no_such_option=1", "bad URL"},
	} {
		_, err := gossip.NewEventBus(&gossip.Config{Driver: tc.url, DialTimeout: time.Second, Logger: discard})
		if assert.Error(t, err, tc.url) {
			assert.Contains(t, err.Error(), tc.want, tc.url)
			assert.NotContains(t, err.Error(), "pw-TOPSECRET")
			assert.False(t, strings.Contains(err.Error(), "\n"))
		}
	}
}

// The bus reports the transport's name.
func TestTransportName(t *testing.T) {
	requireRedis(t)
	bus := newBus(t, testURL, newNS(t))
	assert.Equal(t, "redis", bus.Transport())
}

func itoa(n int) string { return strconv.Itoa(n) }
