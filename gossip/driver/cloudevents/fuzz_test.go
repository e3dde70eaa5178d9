package cloudevents_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// bindings are the fuzz targets' choice of binding: text headers that
// escape (NATS) and binary-safe fields that do not (Redis).
var bindings = []*cloudevents.Binding{&headers, &fields}

// frame writes header pairs as the fuzz targets read them: name and value
// after name and value, separated by NUL bytes.
func frame(ps []pair) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(p.name + "\x00" + p.value)
	}
	return b.String()
}

func unframe(s string) []pair {
	parts := strings.Split(s, "\x00")
	ps := make([]pair, 0, len(parts)/2)
	for i := 0; i+1 < len(parts); i += 2 {
		ps = append(ps, pair{parts[i], parts[i+1]})
	}
	return ps
}

// requireSameMessage fails unless a and b are the same event: Time as the
// same instant, everything else equal.
func requireSameMessage(t *testing.T, a, b *driver.Message, context string) {
	t.Helper()
	if !a.Time.Equal(b.Time) {
		t.Fatalf("%s: time %v became %v", context, a.Time, b.Time)
	}
	ac, bc := *a, *b
	ac.Time, bc.Time = time.Time{}, time.Time{}
	if !equalMessages(&ac, &bc) {
		t.Fatalf("%s:\n first %#v\nsecond %#v", context, ac, bc)
	}
}

func equalMessages(a, b *driver.Message) bool {
	if a.ID != b.ID || a.Type != b.Type || a.Source != b.Source || a.ContentType != b.ContentType ||
		string(a.Data) != string(b.Data) || (a.Data == nil) != (b.Data == nil) || len(a.Metadata) != len(b.Metadata) {
		return false
	}
	for k, v := range a.Metadata {
		if w, ok := b.Metadata[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// validType is typ when it is a valid event type, else "a.b": a driver
// decodes only with the type of a subject, stream or channel gossip could
// publish to (another is an unreadable message whatever its attributes), and
// a type attribute is compared with it.
func validType(typ string) string {
	if driver.ValidateType(typ) != nil {
		return "a.b"
	}
	return typ
}

func seedMessages() []*driver.Message {
	return []*driver.Message{
		{ID: "0199c0de-7a1b-7c3d-9e4f-a0b1c2d3e4f5", Type: "a.b", Source: "svc", ContentType: "application/json",
			Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Data: []byte(`{"x": 1, "h": "<b>&"}`), Metadata: map[string]string{"tenant": "acme"}},
		{ID: " ", Type: "a.b", Source: "s p", Data: []byte{0, 1, 2}, Metadata: map[string]string{"K": "a\r\nb", "k": "", "traceparent": "00-x"}},
		{ID: "%41", Type: "a.b", Source: "ид", ContentType: "text/plain", Data: []byte(`"quoted"`), Metadata: map[string]string{"ключ:1": " v ", "ce-id": "x"}},
	}
}

// FuzzBinaryDecode feeds a Decoder any headers and body: it never panics,
// and what it reads without error is written by Encode and read back as
// the same Message.
func FuzzBinaryDecode(f *testing.F) {
	for _, m := range seedMessages() {
		for i, b := range bindings {
			f.Add(uint8(i), m.Type, frame(encode(b, m)), m.Data)
		}
	}
	f.Add(uint8(0), "a.b", "Ce-Specversion\x001.0\x00CE-ID\x00%zz\x00ce-time\x002026-01-02T03:04:05+01:00", []byte("x"))
	f.Add(uint8(1), "a.b", "ce-specversion\x001.0\x00ce-id\x001\x00ce-type\x00a.b\x00ce-source\x00s\x00\x00empty name", []byte{})
	f.Add(uint8(0), "a.b", "content-type\x00application/cloudevents+json", []byte(`{"specversion":"1.0","id":"1","data":{"a":1}}`))
	f.Fuzz(func(t *testing.T, which uint8, typ, hs string, data []byte) {
		b := bindings[int(which)%len(bindings)]
		typ = validType(typ)
		m, err := decode(b, typ, data, unframe(hs)...)
		if m == nil {
			t.Fatal("Message returned no message")
		}
		if err != nil {
			return
		}
		again, err := decode(b, m.Type, m.Data, encode(b, m)...)
		if err != nil {
			t.Fatalf("what decoded does not decode again: %v\nfirst %#v", err, m)
		}
		requireSameMessage(t, m, again, "binary decode, Encode, decode")
	})
}

// FuzzStructuredDecode feeds DecodeStructured any payload: it never panics,
// and what it reads without error is written by EncodeStructured and read
// back as the same Message.
func FuzzStructuredDecode(f *testing.F) {
	for _, m := range seedMessages() {
		p, err := cloudevents.EncodeStructured(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), m.Type, p)
		f.Add(uint8(1), m.Type, p)
	}
	f.Add(uint8(0), "a.b", []byte(`{"specversion":"1.0","id":"b","source":"s","data_base64":"aGVsbG8=","n":3,"o":{"a":[1]},"z":null}`))
	f.Add(uint8(0), "a.b", []byte(`{"specversion":"1.0","id":"t","datacontenttype":"text/plain","data":"hi \"you\"","gossipmetadata":{"":"e"}}`))
	f.Add(uint8(1), "a.b", []byte(`{"specversion":"1.0","id":"1","type":"a.b","source":"s","time":"0000-01-01T00:00:00+01:00"}`))
	f.Fuzz(func(t *testing.T, which uint8, typ string, payload []byte) {
		b := bindings[int(which)%len(bindings)]
		typ = validType(typ)
		m, err := b.DecodeStructured(typ, payload)
		if m == nil {
			t.Fatal("DecodeStructured returned no message")
		}
		if err != nil {
			return
		}
		p, err := cloudevents.EncodeStructured(m)
		if err != nil {
			t.Fatalf("what decoded does not encode: %v\n%#v", err, m)
		}
		again, err := b.DecodeStructured(m.Type, p)
		if err != nil {
			t.Fatalf("what decoded does not decode again: %v\n%s", err, p)
		}
		requireSameMessage(t, m, again, "DecodeStructured, EncodeStructured, DecodeStructured: "+string(p))
	})
}
