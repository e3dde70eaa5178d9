package cloudevents_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// The two bindings gossip's drivers use: text headers (NATS) and
// binary-safe fields (Redis).
var (
	headers = cloudevents.Binding{MetaPrefix: "gossip-meta-", Extensions: true, Escape: true}
	fields  = cloudevents.Binding{MetaPrefix: "meta-", Extensions: true, Strict: true}
)

type pair struct{ name, value string }

func encode(b *cloudevents.Binding, m *driver.Message) []pair {
	var ps []pair
	b.Encode(m, func(name, value string) { ps = append(ps, pair{name, value}) })
	return ps
}

func decode(b *cloudevents.Binding, typ string, data []byte, ps ...pair) (*driver.Message, error) {
	d := b.NewDecoder(typ, data)
	for _, p := range ps {
		d.Add(p.name, p.value)
	}
	return d.Message()
}

// requireHeaderSafe fails unless every pair survives a text header as it
// is: a token name, a value of printable ASCII without edge spaces.
func requireHeaderSafe(t *testing.T, ps []pair) {
	t.Helper()
	for _, p := range ps {
		for _, c := range []byte(p.name) {
			require.True(t, c > ' ' && c < 0x7f && c != ':', "header name %q", p.name)
		}
		for _, c := range []byte(p.value) {
			require.True(t, c >= ' ' && c < 0x7f, "header %q value %q", p.name, p.value)
		}
		require.Equal(t, strings.TrimSpace(p.value), p.value, "header %q: edge spaces would be trimmed", p.name)
	}
}

// Whatever Publish accepts as an ID, metadata key (non-empty UTF-8) or value
// (UTF-8) comes back byte for byte, in binary mode on both bindings and in
// structured mode.
func TestRoundTripKeepsIDsKeysAndValuesExactly(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		meta map[string]string
	}{
		{"plain", "0199c0de-7a1b-7c3d-9e4f-a0b1c2d3e4f5", map[string]string{"tenant": "acme"}},
		{"CR/LF", "id-crlf", map[string]string{"multi line": "line1\r\nline2", "lf": "\n", "tab": "\t"}},
		{"spaces", " id 1 ", map[string]string{"with space": "  padded  ", "Tenant Name": "Acme Inc"}},
		{"percent", "50%off", map[string]string{"100%": "%41 stays %41", "pct": "%", "bad": "%zz%4"}},
		{"quotes and colons", `"q":1`, map[string]string{"colon:inside": `a:"b"`}},
		{"non-ASCII", "ид-✓", map[string]string{"ünïcode-ключ": "unicode ✓ 世界", "ext": "värde"}},
		{"empty values", "e", map[string]string{"empty": "", "tracestate": "", "baggage": ""}},
		{"trace context", "t", map[string]string{
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"tracestate":  "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7",
			"baggage":     "userId=alice%40example.com, serverNode=DF%2028",
		}},
		{"trace context a header cannot carry", "u", map[string]string{"traceparent": " padded ", "tracestate": "a=1\r\nb=2", "baggage": "k=värde"}},
		{"keys named like the wire's names", "n", map[string]string{
			"id": "1", "specversion": "x", "data": "d", "ce-id": "2", "meta-x": "3", "gossip-meta-": "4",
			"content-type": "5", "Traceparent": "6", "CE-Upper": "7", "gossipmetadata": "8", "long": strings.Repeat("x", 2000),
		}},
	} {
		m := &driver.Message{
			ID: tc.id, Type: "a.b", Source: "user service/1 ✓", ContentType: "application/json",
			Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), Data: []byte(`{"x":1}`), Metadata: tc.meta,
		}
		t.Run(tc.name+"/headers", func(t *testing.T) {
			ps := encode(&headers, m)
			requireHeaderSafe(t, ps)
			got, err := decode(&headers, m.Type, m.Data, ps...)
			require.NoError(t, err)
			assert.Equal(t, m, got)
		})
		t.Run(tc.name+"/fields", func(t *testing.T) {
			got, err := decode(&fields, m.Type, m.Data, encode(&fields, m)...)
			require.NoError(t, err)
			assert.Equal(t, m, got)
		})
		t.Run(tc.name+"/structured", func(t *testing.T) {
			payload, err := cloudevents.EncodeStructured(m)
			require.NoError(t, err)
			got, err := fields.DecodeStructured(m.Type, payload)
			require.NoError(t, err)
			assert.Equal(t, m, got, "%s", payload)
		})
	}
}

// The names gossip writes are the documented ones.
func TestEncodeWritesTheDocumentedNames(t *testing.T) {
	m := &driver.Message{ID: "1", Type: "a.b", Source: "s p", ContentType: "application/json",
		Time:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Metadata: map[string]string{"traceparent": "tp", "tenant": "acme", "Tenant Name": "Acme Inc"}}
	want := map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-type": "a.b", "ce-time": "2026-01-02T03:04:05Z",
		"content-type": "application/json", "traceparent": "tp"}
	for _, tc := range []struct {
		b    *cloudevents.Binding
		more map[string]string
	}{
		{&headers, map[string]string{"ce-source": "s%20p", "ce-tenant": "acme", "gossip-meta-Tenant%20Name": "Acme%20Inc"}},
		{&fields, map[string]string{"ce-source": "s p", "ce-tenant": "acme", "meta-Tenant Name": "Acme Inc"}},
	} {
		got := map[string]string{}
		for _, p := range encode(tc.b, m) {
			got[p.name] = p.value
		}
		for k, v := range tc.more {
			want[k] = v
		}
		assert.Equal(t, want, got, "MetaPrefix %q", tc.b.MetaPrefix)
		for k := range tc.more {
			delete(want, k)
		}
	}
}

// What other producers send is read: names in any case, the content type
// as content-type or ce-datacontenttype, extension attributes and foreign
// names as metadata, structured mode with and without a content type.
func TestDecodeReadsOtherProducers(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	doc := `{"specversion":"1.0","id":"42","type":"a.b","source":"other","time":"2026-01-02T03:04:05Z",` +
		`"datacontenttype":"application/json","data":{"n":1},"tenant":"acme","subject":"s","gossipmetadata":{"k":"v"}}`
	structured := &driver.Message{ID: "42", Type: "a.b", Source: "other", Time: at, ContentType: "application/json",
		Data: []byte(`{"n":1}`), Metadata: map[string]string{"tenant": "acme", "k": "v"}}
	for _, tc := range []struct {
		name string
		b    *cloudevents.Binding
		data string
		ps   []pair
		want *driver.Message
	}{
		{"binary, names in any case", &headers, "x", []pair{{"Ce-SpecVersion", "1.0"}, {"CE-ID", "7"}, {"Ce-Type", "other.type"},
			{"CE-Source", "/src"}, {"CE-TIME", "2026-01-02T03:04:05Z"}, {"Content-Type", "text/plain"}, {"TraceParent", "tp"},
			{"CE-Tenant", "acme"}, {"Gossip-Meta-Key", "v"}, {"X-Other", "as it is"}},
			&driver.Message{ID: "7", Type: "a.b", Source: "/src", Time: at, ContentType: "text/plain", Data: []byte("x"),
				Metadata: map[string]string{"traceparent": "tp", "tenant": "acme", "Key": "v", "X-Other": "as it is", "ce-type": "other.type"}}},
		{"binary, ce-datacontenttype", &fields, "{}", []pair{{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-type", "a.b"},
			{"ce-source", "s"}, {"ce-datacontenttype", "application/json"}, {"ce-partitionkey", "p7"}},
			&driver.Message{ID: "1", Type: "a.b", Source: "s", ContentType: "application/json", Data: []byte("{}"),
				Metadata: map[string]string{"partitionkey": "p7"}}},
		{"structured, with a content type", &headers, doc, []pair{{"Content-Type", "application/cloudevents+json; charset=utf-8"}}, structured},
		{"structured, without a content type", &headers, doc, nil, structured},
		{"structured, no content type on a strict binding", &fields, doc, nil, structured},
		{"structured, text data and foreign headers", &headers,
			`{"specversion":"1.0","id":"t","type":"x","source":"s","datacontenttype":"text/plain","data":"hi \"you\""}`,
			[]pair{{"content-type", "application/cloudevents+json"}, {"X-Other", "v"}},
			&driver.Message{ID: "t", Type: "a.b", Source: "s", ContentType: "text/plain", Data: []byte(`hi "you"`),
				Metadata: map[string]string{"X-Other": "v", "ce-type": "x"}}},
		{"structured, data_base64 and JSON without datacontenttype", &headers,
			`{"specversion":"1.0","id":"b","source":"s","data_base64":"aGVsbG8=","n":3}`, nil,
			&driver.Message{ID: "b", Type: "a.b", Source: "s", Data: []byte("hello"), Metadata: map[string]string{"n": "3"}}},
		{"structured, data without datacontenttype is JSON", &headers,
			`{"specversion":"1.0","id":"j","source":"s","data":"text"}`, nil,
			&driver.Message{ID: "j", Type: "a.b", Source: "s", ContentType: "application/json", Data: []byte(`"text"`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decode(tc.b, "a.b", []byte(tc.data), tc.ps...)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// What gossip wrote before extension names went as ce-<key> on Redis
// (meta-<key> for every key) and before gossipmetadata was a string (an
// object) reads as it did.
func TestDecodeReadsTheOldFormat(t *testing.T) {
	m, err := decode(&fields, "a.b", []byte("x"), pair{"ce-specversion", "1.0"}, pair{"ce-id", "1"}, pair{"ce-type", "a.b"},
		pair{"ce-source", "s"}, pair{"meta-tenant", "acme"}, pair{"meta-Tenant Name", "Acme Inc"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"tenant": "acme", "Tenant Name": "Acme Inc"}, m.Metadata)

	m, err = fields.DecodeStructured("a.b", []byte(`{"specversion":"1.0","id":"1","type":"a.b","source":"s",`+
		`"traceparent":"tp","gossipmetadata":{"tenant":"acme","Tenant Name":"Acme Inc","k":""}}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"traceparent": "tp", "tenant": "acme", "Tenant Name": "Acme Inc", "k": ""}, m.Metadata)
}

// What is not a readable CloudEvent is an error wrapping ErrNotCloudEvent
// and driver.ErrUnreadable that says why; the message keeps the type the
// transport names and the body as it came.
func TestDecodeRejectsWhatIsNotACloudEvent(t *testing.T) {
	valid := []pair{{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-type", "a.b"}, {"ce-source", "s"}}
	with := func(ps ...pair) []pair { return append(append([]pair(nil), valid...), ps...) }
	for _, tc := range []struct {
		name   string
		b      *cloudevents.Binding
		data   string
		ps     []pair
		reason string
	}{
		{"no attributes", &headers, "\x00\x01 not an event", nil, "no ce-specversion field; no ce-id field"},
		{"a JSON body without attributes", &fields, `{"email":"a@example.com"}`, nil, "no ce-specversion field"},
		{"specversion 0.3", &headers, "x", []pair{{"ce-specversion", "0.3"}, {"ce-id", "1"}}, `ce-specversion "0.3" is not "1.0"`},
		{"no id", &headers, "x", []pair{{"ce-specversion", "1.0"}}, "no ce-id field"},
		{"bad time", &headers, "x", with(pair{"ce-time", "yesterday"}), `ce-time "yesterday" is not RFC 3339`},
		{"bad metadata name", &headers, "x", with(pair{"gossip-meta-%zz", "v"}), `bad metadata name "gossip-meta-%zz"`},
		{"strict: no source", &fields, "x", []pair{{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-type", "a.b"}}, "no ce-source field"},
		{"structured: not JSON", &headers, "{", []pair{{"content-type", "application/cloudevents+json"}}, "not a JSON object"},
		{"structured: no id", &headers, `{"specversion":"1.0"}`, nil, "no id"},
		{"structured: bad data_base64", &headers, `{"specversion":"1.0","id":"1","data_base64":"%"}`, nil, "data_base64 is not base64"},
		{"structured strict: no type", &fields, `{"specversion":"1.0","id":"1","source":"s"}`, nil, "no type"},
		{"structured: bad gossipmetadata", &headers, `{"specversion":"1.0","id":"1","gossipmetadata":[1]}`, nil, "gossipmetadata is not an object of strings"},
		{"structured: gossipmetadata text not an object", &headers, `{"specversion":"1.0","id":"1","gossipmetadata":"{\"k\":1}"}`, nil, "gossipmetadata is not an object of strings"},
		{"structured: gossipmetadata text not JSON", &headers, `{"specversion":"1.0","id":"1","gossipmetadata":"k=v"}`, nil, "gossipmetadata is not an object of strings"},
		// What gossip's rule refuses at Publish is unreadable from another producer.
		{"an ID with CR LF", &headers, "x", []pair{{"ce-specversion", "1.0"}, {"ce-id", "a%0D%0Ab"}}, `ID "a\r\nb" has the control character U+000D`},
		{"a Latin-1 ID", &fields, "x", []pair{{"ce-specversion", "1.0"}, {"ce-id", "caf\xe9"}, {"ce-type", "a.b"}, {"ce-source", "s"}}, "is not valid UTF-8"},
		{"a Latin-1 source", &fields, "x", with(pair{"ce-source", "m\xfcnchen"}), "source"},
		{"a Latin-1 metadata value", &fields, "x", with(pair{"meta-city", "Z\xfcrich"}), `metadata key "city" is not valid UTF-8`},
		{"structured: Latin-1 in a string", &headers, "{\"specversion\":\"1.0\",\"id\":\"caf\xe9\"}", nil, "not valid UTF-8"},
		{"structured: an empty metadata key", &fields, `{"specversion":"1.0","id":"e","type":"a.b","source":"s","gossipmetadata":{"":"empty key"}}`, nil, `metadata key "" is empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decode(tc.b, "a.b", []byte(tc.data), tc.ps...)
			require.Error(t, err)
			assert.ErrorIs(t, err, cloudevents.ErrNotCloudEvent)
			assert.ErrorIs(t, err, driver.ErrUnreadable)
			assert.Contains(t, err.Error(), tc.reason)
			require.NotNil(t, m)
			assert.Equal(t, "a.b", m.Type, "the type is the transport's")
			assert.Equal(t, []byte(tc.data), m.Data, "the body as it came")
			assert.Equal(t, "application/octet-stream", m.ContentType, "a body of unknown bytes")
		})
	}
}

// The transport names the type, in every mode and on every binding; a
// type attribute that differs is kept under MetaForeignType, and an event
// that already carries it matches.
func TestForeignTypeIsKeptAsMetadata(t *testing.T) {
	payload := []byte(`{"specversion":"1.0","id":"1","source":"s","type":"com.example.other"}`)
	for _, b := range []*cloudevents.Binding{&headers, &fields} {
		m, err := b.DecodeStructured("a.b", payload)
		require.NoError(t, err)
		assert.Equal(t, "a.b", m.Type)
		assert.Equal(t, map[string]string{cloudevents.MetaForeignType: "com.example.other"}, m.Metadata)

		m, err = decode(b, "a.b", []byte("x"), pair{"ce-specversion", "1.0"}, pair{"ce-id", "1"},
			pair{"CE-Type", "com.example.other"}, pair{"ce-source", "s"})
		require.NoError(t, err)
		assert.Equal(t, "a.b", m.Type)
		assert.Equal(t, map[string]string{cloudevents.MetaForeignType: "com.example.other"}, m.Metadata)

		m, err = b.DecodeStructured("a.b", []byte(`{"specversion":"1.0","id":"1","source":"s","type":"a.b"}`))
		require.NoError(t, err)
		assert.Nil(t, m.Metadata, "a type that matches is no metadata")
	}
}

// Structured mode carries JSON data byte for byte: not compacted, not
// HTML-escaped, whatever the JSON holds.
func TestStructuredKeepsJSONDataBytes(t *testing.T) {
	for _, data := range []string{`{"h":"<b>&amp;</b>"}`, `{ "x" : 1,  "y":[ 1, 2 ] }`, `"\u003c"`, "[\n  1\n]", `"\u2028"`} {
		m := &driver.Message{ID: "1", Type: "a.b", Source: "s", ContentType: "application/json", Data: []byte(data)}
		payload, err := cloudevents.EncodeStructured(m)
		require.NoError(t, err)
		assert.Contains(t, string(payload), `"data":`+data, "the data as it was")
		got, err := headers.DecodeStructured("a.b", payload)
		require.NoError(t, err)
		assert.Equal(t, data, string(got.Data))
	}
	// What a decoder would trim or read as another content type goes as
	// base64, and comes back the same.
	for _, m := range []*driver.Message{
		{ID: "1", Type: "a.b", ContentType: "application/json", Data: []byte(" 1 ")},
		{ID: "2", Type: "a.b", Data: []byte(`{"a":1}`)},
	} {
		payload, err := cloudevents.EncodeStructured(m)
		require.NoError(t, err)
		assert.Contains(t, string(payload), `"data_base64":`)
		got, err := headers.DecodeStructured("a.b", payload)
		require.NoError(t, err)
		assert.Equal(t, m.Data, got.Data)
		assert.Equal(t, m.ContentType, got.ContentType)
	}
}

// The structured decoder reads any JSON layout of an object: white space
// anywhere, escaped member names, nested values (an extension's JSON text),
// null, and the last of duplicate members.
func TestStructuredReadsAnyJSONLayout(t *testing.T) {
	doc := " \r\n{ \"specversion\" : \"1.0\" ,\t\"\\u0069d\":\"x\\\"1\", \"id\": \"x\\\"2\"," +
		` "source":"s", "n" : -1.5e3 , "obj": {"a":[1,{"b":"}"}]}, "t": true,` +
		` "gossipmetadata": {"k": "v", "z": null}, "data": [1, "]"] } ` + "\n"
	m, err := headers.DecodeStructured("a.b", []byte(doc))
	require.NoError(t, err)
	assert.Equal(t, `x"2`, m.ID, "the last of duplicate members")
	assert.Equal(t, "s", m.Source)
	assert.Equal(t, `[1, "]"]`, string(m.Data))
	assert.Equal(t, "application/json", m.ContentType)
	assert.Equal(t, map[string]string{"n": "-1.5e3", "obj": `{"a":[1,{"b":"}"}]}`, "t": "true", "k": "v", "z": ""}, m.Metadata)

	for _, bad := range []string{`{"specversion":"1.0","id":"1","gossipmetadata":{"a":1}}`, `{"specversion":"1.0","id":"1","gossipmetadata":"x"}`} {
		_, err := headers.DecodeStructured("a.b", []byte(bad))
		assert.ErrorContains(t, err, "gossipmetadata is not an object of strings", bad)
	}
	_, err = headers.DecodeStructured("a.b", []byte(`{"specversion":"1.0","id":"1","gossipmetadata":null}`))
	assert.NoError(t, err)
}

// Structured mode writes every attribute as a string a CloudEvents SDK
// accepts: metadata keys that are extension names as attributes of their
// own when their value is not empty, the others as the JSON text of an
// object in gossipmetadata.
func TestStructuredMetadataIsStringAttributes(t *testing.T) {
	m := &driver.Message{ID: "1", Type: "a.b", Source: "s", Metadata: map[string]string{
		"tenant": "acme", "traceparent": "00-tp", "Tenant-ID": "a\"b", "id": "x", "k": "", "tracestate": ""}}
	payload, err := cloudevents.EncodeStructured(m)
	require.NoError(t, err)
	assert.Equal(t, `{"specversion":"1.0","id":"1","type":"a.b","source":"s","tenant":"acme","traceparent":"00-tp",`+
		`"gossipmetadata":"{\"Tenant-ID\":\"a\\\"b\",\"id\":\"x\",\"k\":\"\",\"tracestate\":\"\"}"}`, string(payload))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(payload, &doc))
	for name, v := range doc {
		assert.IsType(t, "", v, "attribute %s", name)
	}
	got, err := headers.DecodeStructured("a.b", payload)
	require.NoError(t, err)
	assert.Equal(t, m.Metadata, got.Metadata)
}
