package redis

import (
	"context"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// URLs pick the client kind and gossip's options; the rest goes to go-redis.
func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		kind    string
		addr    string
		check   func(t *testing.T, o options)
		checkGo func(t *testing.T, c goredis.UniversalClient)
	}{
		{url: "redis://127.0.0.1:6379/2?prefix=shop&maxlen=500&mode=pubsub&dial_timeout=3s", kind: "single", addr: "127.0.0.1:6379",
			check: func(t *testing.T, o options) {
				assert.Equal(t, "shop", o.prefix)
				assert.Equal(t, int64(500), o.maxLen)
				assert.Equal(t, PubSub, o.mode)
			},
			checkGo: func(t *testing.T, c goredis.UniversalClient) {
				o := c.(*goredis.Client).Options()
				assert.Equal(t, 2, o.DB)
				assert.Equal(t, 3*time.Second, o.DialTimeout)
			}},
		{url: "rediss://app:pwTOPSECRET@cache.internal:6380/0?block=250ms&claim_interval=2s&maxage=24h", kind: "single", addr: "cache.internal:6380",
			check: func(t *testing.T, o options) {
				assert.Equal(t, 250*time.Millisecond, o.block)
				assert.Equal(t, 2*time.Second, o.claimInterval)
				assert.Equal(t, 24*time.Hour, o.maxAge)
			},
			checkGo: func(t *testing.T, c goredis.UniversalClient) {
				o := c.(*goredis.Client).Options()
				assert.NotNil(t, o.TLSConfig)
				assert.Equal(t, "app", o.Username)
				assert.Equal(t, "pwTOPSECRET", o.Password)
			}},
		{url: "redis://a:7000?addr=b:7001&addr=c:7002", kind: "cluster", addr: "cluster a:7000,b:7001,c:7002"},
		{url: "redis://a:7000,b:7001,c:7002?prefix=x", kind: "cluster", addr: "cluster a:7000,b:7001,c:7002"},
		{url: "redis://a:7000?cluster=true", kind: "cluster", addr: "cluster a:7000"},
		{url: "redis://:pwTOPSECRET@s1:26379,s2:26379/0?master_name=mymaster", kind: "single", addr: "sentinels s1:26379,s2:26379 master mymaster"},
	} {
		t.Run(driver.Redact(tc.url), func(t *testing.T) {
			o := defaultOptions()
			c, addr, err := parseURL(tc.url, &o)
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, o.validate())
			assert.Equal(t, tc.addr, addr)
			switch tc.kind {
			case "single":
				assert.IsType(t, &goredis.Client{}, c)
			case "cluster":
				assert.IsType(t, &goredis.ClusterClient{}, c)
			}
			if tc.check != nil {
				tc.check(t, o)
			}
			if tc.checkGo != nil {
				tc.checkGo(t, c)
			}
		})
	}
}

func TestGlobPattern(t *testing.T) {
	assert.Equal(t, `gossip:orders.*.created`, globPattern("gossip", "orders.*.created"))
	assert.Equal(t, `gossip:audit.*`, globPattern("gossip", "audit.>"))
	assert.Equal(t, `we\[ir\]d\*:a.b`, globPattern("we[ir]d*", "a.b"))
}

func sampleMessage() *driver.Message {
	return &driver.Message{
		ID: "01J0ABC", Type: "user.created", Source: "users",
		Time: time.Date(2024, 5, 1, 12, 30, 0, 123456789, time.UTC), ContentType: "application/octet-stream",
		Data: []byte{0, 1, 2, 0xff, '\n'},
		Metadata: map[string]string{
			"tenant": "acme", "meta-nested": "x", "ce-looks-like": "y", "ключ": "значение",
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "empty": "",
		},
	}
}

// What Publish writes, a subscription reads back exactly.
func TestStreamEntryRoundTrip(t *testing.T) {
	m := sampleMessage()
	got, err := decodeEntry("user.created", entryWritten(m))
	require.NoError(t, err)
	assert.Equal(t, m, got)
}

// Fields of another producer become metadata under their own names, in any
// case; the data field does not; a ce-type that is not the stream's is kept.
func TestStreamEntryOfAnotherProducer(t *testing.T) {
	got, err := decodeEntry("t", map[string]any{"CE-SpecVersion": "1.0", "Ce-Id": "1", "ce-type": "t", "ce-source": "s",
		"ce-partitionkey": "p7", "priority": "high", "data": "x"})
	require.NoError(t, err)
	assert.Equal(t, &driver.Message{ID: "1", Type: "t", Source: "s", Data: []byte("x"),
		Metadata: map[string]string{"partitionkey": "p7", "priority": "high"}}, got)

	got, err = decodeEntry("t", map[string]any{"ce-specversion": "1.0", "ce-id": "1", "ce-type": "com.example.other", "ce-source": "s"})
	require.NoError(t, err)
	assert.Equal(t, "t", got.Type, "the stream names the type")
	assert.Equal(t, map[string]string{cloudevents.MetaForeignType: "com.example.other"}, got.Metadata)
}

func TestStructuredRoundTrip(t *testing.T) {
	for _, m := range []*driver.Message{
		sampleMessage(),
		{ID: "1", Type: "a.b", Source: "s", Time: time.Unix(1, 0).UTC(), ContentType: "application/json", Data: []byte(`{"x":[1,2]}`)},
	} {
		payload, err := cloudevents.EncodeStructured(m)
		require.NoError(t, err)
		got, err := decodeStructured(m.Type, payload)
		require.NoError(t, err)
		assert.Equal(t, m, got, "%s", payload)
	}
}

func TestCorruptEntries(t *testing.T) {
	for _, tc := range []struct {
		entry map[string]any
		want  string
	}{
		{map[string]any{"data": "x"}, "no ce-specversion field"},
		{map[string]any{"ce-specversion": "0.3", "ce-id": "1", "ce-type": "t", "ce-source": "s"}, `ce-specversion "0.3" is not "1.0"`},
		{map[string]any{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s"}, "no ce-type field"},
		{map[string]any{"ce-specversion": "1.0", "ce-id": "1", "ce-type": "t", "ce-source": "s", "ce-time": "yesterday"}, "not RFC 3339"},
	} {
		m, err := decodeEntry("t", tc.entry)
		require.Error(t, err)
		assert.ErrorIs(t, err, driver.ErrUnreadable)
		assert.Contains(t, err.Error(), tc.want)
		assert.Equal(t, "t", m.Type, "the type is the stream's")
	}
}

// Errors about a URL never quote a password, in userinfo or parameters.
func TestURLErrorsHidePasswords(t *testing.T) {
	for _, dsn := range []string{
		"redis://:user-TOPSECRET@127.0.0.1:1/0?bogus=1",
		"redis://s1:26379/0?master_name=m&password=qp-TOPSECRET&bogus=1",
		"redis://s1:26379/0?master_name=m&sentinel_password=sp-TOPSECRET&maxlen=x",
		// Unencoded characters a URL parser stops at, quoting the rest.
		"redis://user:TOPSECRET/s3/cret@127.0.0.1:1/0",
		"redis://user:TOPSECRET#s3#cret@127.0.0.1:1/0",
		"redis://user:TOPSECRET?s3cr%et@127.0.0.1:1/0",
	} {
		o := defaultOptions()
		_, _, err := parseURL(dsn, &o)
		require.Error(t, err, dsn)
		for _, secret := range []string{"TOPSECRET", "s3", "cret", "cr%et"} {
			assert.NotContains(t, err.Error(), secret)
		}
	}
}

// Metadata round-trips in Pub/Sub mode whatever its values, also the W3C
// trace keys with an empty value (a propagator that wrote no state).
func TestStructuredRoundTripsEmptyTraceValues(t *testing.T) {
	m := &driver.Message{
		ID: "1", Type: "a.b", Source: "s", Time: time.Unix(1, 0).UTC(), ContentType: "application/json",
		Data:     []byte(`{"x":1}`),
		Metadata: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "", "baggage": ""},
	}
	payload, err := cloudevents.EncodeStructured(m)
	require.NoError(t, err)
	got, err := decodeStructured(m.Type, payload)
	require.NoError(t, err)
	assert.Equal(t, m.Metadata, got.Metadata, "%s", payload)
}

// entryWritten is the entry Publish writes for m, as go-redis reads it
// back: a map of its fields.
func entryWritten(m *driver.Message) map[string]any {
	args := xadd(context.Background(), "stream", new(int64), m).Args()
	entry := map[string]any{}
	for i := slices.Index(args, any("*")) + 1; i+1 < len(args); i += 2 {
		entry[argString(args[i])] = argString(args[i+1])
	}
	return entry
}

func argString(a any) string {
	switch v := a.(type) {
	case *string:
		return *v
	case []byte:
		return string(v)
	}
	return a.(string)
}
