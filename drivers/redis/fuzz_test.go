package redis

import (
	"bytes"
	"maps"
	"strings"
	"testing"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// entryOf reads raw as a stream entry's fields: name NUL value NUL ...
func entryOf(raw []byte) map[string]any {
	parts := bytes.Split(raw, []byte{0})
	values := make(map[string]any, len(parts)/2)
	for i := 0; i+1 < len(parts); i += 2 {
		values[string(parts[i])] = string(parts[i+1])
	}
	return values
}

// entryBytes is the inverse of entryOf, for seeds.
func entryBytes(fields ...string) []byte { return []byte(strings.Join(fields, "\x00")) }

// sameMessage reports whether a and b are the same event.
func sameMessage(a, b *driver.Message) bool {
	return a.ID == b.ID && a.Type == b.Type && a.Source == b.Source && a.ContentType == b.ContentType &&
		a.Time.Equal(b.Time) && bytes.Equal(a.Data, b.Data) && len(a.Metadata) == len(b.Metadata) &&
		(len(a.Metadata) == 0 || maps.Equal(a.Metadata, b.Metadata))
}

// Whatever a stream entry holds, decoding it does not panic, and what it
// accepts re-encodes (XADD's fields) and decodes to the same message.
func FuzzStreamEntry(f *testing.F) {
	f.Add("user.created", entryBytes("ce-specversion", "1.0", "ce-id", "1", "ce-type", "user.created", "ce-source", "s",
		"ce-time", "2024-05-01T12:30:00.5+02:00", "content-type", "application/json", "meta-k", "v\r\n", "traceparent", "x", "data", `{"a":1}`))
	f.Add("a.b", entryBytes("CE-SpecVersion", "1.0", "Ce-Id", " %41 ", "ce-type", "a.b", "ce-source", "s", "ce-partitionkey", "p", "Priority", "high", "data", "\xff"))
	f.Add("a.b", entryBytes("ce-specversion", "1.0", "ce-id", "x", "ce-type", "a.b", "ce-source", "s", "meta-", "", "meta-meta-", "\x00"))
	f.Add("t", entryBytes("data", "garbage"))
	f.Add("t", []byte{})
	f.Fuzz(func(t *testing.T, typ string, raw []byte) {
		if driver.ValidateType(typ) != nil {
			return // a stream's type is valid: the reader reads no other
		}
		m, err := decodeEntry(typ, entryOf(raw))
		if m == nil || m.Type != typ {
			t.Fatalf("decodeEntry returned %+v, want a message of type %s", m, typ)
		}
		if err != nil {
			return
		}
		again, err := decodeEntry(typ, entryWritten(m))
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", m, err)
		}
		if !sameMessage(m, again) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
		}
	})
}

// Whatever a Pub/Sub payload holds, decoding it does not panic, and what
// it accepts re-encodes and decodes to the same message.
func FuzzPubSubPayload(f *testing.F) {
	f.Add("a.b", []byte(`{"specversion":"1.0","id":"p-1","type":"a.b","source":"node","time":"2024-05-01T12:30:00Z",`+
		`"datacontenttype":"application/json","data":{ "n" : "<b>&" },"region":"eu","gossipmetadata":{"k":"v\r\n"}}`))
	f.Add("a.b", []byte(`{"specversion":"1.0","id":" ","type":"a.b","source":"s","datacontenttype":"text/plain","data":"hi"}`))
	f.Add("a.b", []byte(`{"specversion":"1.0","id":"1","type":"a.b","source":"s","data_base64":"aGVsbG8=","traceparent":7}`))
	f.Add("a.b", []byte(`{"specversion":"1.0","id":"1","type":"a.b","source":"s","data":null,"":"x"}`))
	f.Add("t", []byte("garbage"))
	f.Fuzz(func(t *testing.T, typ string, payload []byte) {
		if driver.ValidateType(typ) != nil {
			return // channels of invalid types are not read
		}
		m, err := decodeStructured(typ, payload)
		if m == nil || m.Type != typ {
			t.Fatalf("decodeStructured returned %+v, want a message of type %s", m, typ)
		}
		if err != nil {
			return
		}
		b, err := cloudevents.EncodeStructured(m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		again, err := decodeStructured(typ, b)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", b, err)
		}
		if !sameMessage(m, again) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v\n%s", m, again, b)
		}
	})
}

// Whatever the URL, parsing it does not panic, and an error never shows
// the password (what stands between the user's ':' and the last '@').
func FuzzParseURL(f *testing.F) {
	f.Add(false, "app", "pw", "127.0.0.1:6379/0?maxlen=5")
	f.Add(false, "", "s3/cr#t?%", "h:1,h:2/0?addr=h:3")
	f.Add(true, "u", "x", "[::1]:6380/0?master_name=m&password=pw&block=-1s")
	f.Add(false, "", "", "h:1/0?pool_size=1e12&dial_timeout=99999999999999")
	f.Add(false, "u", "p@q", "h/0?%zz")
	f.Fuzz(func(t *testing.T, tls bool, user, pass, rest string) {
		if strings.Contains(rest, "tls_") || strings.Contains(user+rest, "TOPSECRET") {
			return // tls_ reads files; TOPSECRET must be the password alone
		}
		scheme := "redis"
		if tls {
			scheme = "rediss"
		}
		dsn := scheme + "://" + user + ":TOPSECRET" + pass + "@" + rest
		o := defaultOptions()
		c, _, err := parseURL(dsn, &o)
		if err == nil {
			_ = c.Close()
			err = o.validate()
		}
		if err != nil && strings.Contains(err.Error(), "TOPSECRET") {
			t.Fatalf("the error about %q shows the password: %s", driver.Redact(dsn),
				strings.ReplaceAll(err.Error(), "TOPSECRET", "<the password>"))
		}
	})
}
