package nats

import (
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip/driver"
)

// roundTrip encodes m and decodes the result. (The conformance suite's
// MetadataRoundTrip sends the same keys through a server.)
func roundTrip(t *testing.T, m *driver.Message) *driver.Message {
	t.Helper()
	msg := encodeMessage("p."+m.Type, m, "")
	for name, vs := range msg.Header {
		for _, v := range vs {
			require.NotContains(t, name+v, "\r", "header %q carries a CR", name)
			require.NotContains(t, name+v, "\n", "header %q carries a LF", name)
			require.Equal(t, strings.TrimSpace(v), v, "header %q: leading or trailing space would be trimmed", name)
			require.NotContains(t, name, ":", "header name %q", name)
			require.NotContains(t, name, " ", "header name %q", name)
		}
	}
	got, err := decodeMessage(m.Type, msg.Header, msg.Data)
	require.NoError(t, err)
	return got
}

func TestWireRoundTripsAttributesAndAnyMetadata(t *testing.T) {
	m := &driver.Message{
		ID: "01HX", Type: "a.b", Source: "user service/1", ContentType: "application/json",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		Data: []byte(`{"x":1}`),
		Metadata: map[string]string{
			"simple":       "value",
			"Mixed-Case":   "Keeps Case",
			"with space":   "  padded  ",
			"ünïcode-ключ": "unicode ✓ 世界",
			"colon:inside": "a:b",
			"dot.key":      "",
			"percent":      "%41 stays %41",
			"multi-line":   "line1\r\nline2",
			"long":         strings.Repeat("x", 2000),
			"traceparent":  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"tracestate":   "k=v,k2=v2",
			"id":           "a metadata key named like an attribute",
			"gossip-meta-": "the prefix itself",
			"nats-x":       "looks like a NATS header",
		},
	}
	got := roundTrip(t, m)
	assert.Equal(t, m.ID, got.ID)
	assert.Equal(t, m.Type, got.Type)
	assert.Equal(t, m.Source, got.Source)
	assert.Equal(t, m.ContentType, got.ContentType)
	assert.True(t, m.Time.Equal(got.Time), "time %v != %v", m.Time, got.Time)
	assert.Equal(t, m.Data, got.Data)
	assert.Equal(t, m.Metadata, got.Metadata)
}

func TestWireHeaderNames(t *testing.T) {
	msg := encodeMessage("p.a.b", &driver.Message{ID: "1", Type: "a.b", Source: "s", ContentType: "application/json",
		Metadata: map[string]string{"traceparent": "tp", "tenant": "acme", "Tenant Name": "Acme Inc"}}, "")
	assert.Equal(t, "1.0", msg.Header.Get("ce-specversion"))
	assert.Equal(t, "1", msg.Header.Get("ce-id"))
	assert.Equal(t, "a.b", msg.Header.Get("ce-type"))
	assert.Equal(t, "s", msg.Header.Get("ce-source"))
	assert.Equal(t, "application/json", msg.Header.Get("content-type"))
	assert.Equal(t, "tp", msg.Header.Get("traceparent"), "trace context under its W3C name")
	assert.Equal(t, "acme", msg.Header.Get("ce-tenant"), "a CloudEvents extension name travels as ce-<name>")
	assert.Equal(t, "Acme%20Inc", msg.Header.Get("gossip-meta-Tenant%20Name"), "other keys percent-encoded under gossip-meta-")
}

// Any ID Publish accepts comes back exactly, and neither ce-id nor
// Nats-Msg-Id breaks the headers; JetStream's own headers are no metadata.
func TestWireRoundTripsAnyIDAndSkipsNatsHeaders(t *testing.T) {
	m := &driver.Message{ID: " id\u00a050% ✓ ", Type: "a.b", Source: "s", Metadata: map[string]string{"k": "v\r\n"}}
	msg := encodeMessage("p.a.b", m, m.Type+":"+m.ID)
	assert.Equal(t, "a.b:%20id%C2%A050%25%20%E2%9C%93%20", msg.Header.Get(HeaderMsgID))
	msg.Header.Set("Nats-Sequence", "7")
	got, err := decodeMessage(m.Type, msg.Header, msg.Data)
	require.NoError(t, err)
	assert.Equal(t, m.ID, got.ID)
	assert.Equal(t, map[string]string{"k": "v\r\n"}, got.Metadata)
	assert.Equal(t, m.ID, roundTrip(t, m).ID)
}

func TestWireNotACloudEventIsAnError(t *testing.T) {
	for name, msg := range map[string]*natsgo.Msg{
		"no headers":      {Subject: "p.a", Data: []byte("garbage")},
		"no specversion":  {Subject: "p.a", Header: natsgo.Header{"ce-id": {"1"}}, Data: []byte("x")},
		"no id":           {Subject: "p.a", Header: natsgo.Header{"ce-specversion": {"1.0"}}},
		"bad time":        {Subject: "p.a", Header: natsgo.Header{"ce-specversion": {"1.0"}, "ce-id": {"1"}, "ce-time": {"yesterday"}}},
		"bad structured":  {Subject: "p.a", Header: natsgo.Header{"content-type": {"application/cloudevents+json"}}, Data: []byte("{")},
		"specversion 0.3": {Subject: "p.a", Header: natsgo.Header{"ce-specversion": {"0.3"}, "ce-id": {"1"}}},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := decodeMessage("a", msg.Header, msg.Data)
			require.Error(t, err)
			require.NotNil(t, m)
			assert.Equal(t, "a", m.Type, "the type comes from the subject")
			assert.NotNil(t, m.Data)
		})
	}
}

func TestWireReadsStructuredMode(t *testing.T) {
	msg := &natsgo.Msg{Subject: "p.a.b", Header: natsgo.Header{"content-type": {"application/cloudevents+json; charset=utf-8"}},
		Data: []byte(`{"specversion":"1.0","id":"42","type":"a.b","source":"other","time":"2026-01-02T03:04:05Z",` +
			`"datacontenttype":"application/json","data":{"n":1},"tenant":"acme"}`)}
	m, err := decodeMessage("a.b", msg.Header, msg.Data)
	require.NoError(t, err)
	assert.Equal(t, "42", m.ID)
	assert.Equal(t, "other", m.Source)
	assert.JSONEq(t, `{"n":1}`, string(m.Data))
	assert.Equal(t, "acme", m.Metadata["tenant"])
	assert.Equal(t, 2026, m.Time.Year())
}

// W3C baggage values are percent-encoded by definition and tracestate and
// baggage lists may hold spaces after their commas: the trace headers must
// come back exactly as they were given.
func TestWireTraceHeadersRoundTripPercentAndSpaces(t *testing.T) {
	m := &driver.Message{
		ID: "1", Type: "a.b", Source: "s",
		Metadata: map[string]string{
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"tracestate":  "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7",
			"baggage":     "userId=alice%40example.com, serverNode=DF%2028",
		},
	}
	got := roundTrip(t, m)
	assert.Equal(t, m.Metadata, got.Metadata)
}

// A trace header value that a header cannot carry as it is (a line break,
// edge spaces, non-ASCII) still comes back exactly.
func TestWireTraceHeadersRoundTripUnsafeValues(t *testing.T) {
	m := &driver.Message{
		ID: "1", Type: "a.b", Source: "s",
		Metadata: map[string]string{"traceparent": " padded ", "tracestate": "a=1\r\nb=2", "baggage": "k=värde"},
	}
	got := roundTrip(t, m)
	assert.Equal(t, m.Metadata, got.Metadata)
}

// publishSubject gives Subject's answer for every type, cached or not: up
// to maxCachedSubjects types are kept, the ones beyond are made each time.
func TestPublishSubjectIsSubject(t *testing.T) {
	for _, prefix := range []string{"", "gossip"} {
		c := &Conn{cfg: config{prefix: prefix}}
		for round := range 2 {
			for i := range maxCachedSubjects + 10 {
				typ := "orders.t" + strconv.Itoa(i)
				require.Equal(t, c.Subject(typ), c.publishSubject(typ), "prefix %q, round %d", prefix, round)
			}
		}
		if p := c.subjects.Load(); prefix != "" && assert.NotNil(t, p) {
			assert.Len(t, *p, maxCachedSubjects)
		}
	}
}
