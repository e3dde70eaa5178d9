package redis

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// No official CloudEvents binding for Redis exists; this one is gossip's and
// is documented in docs/drivers/redis.md. Stream entries carry the
// attributes as fields, data in one field; field names and values are
// binary-safe, so metadata travels as meta-<key> unescaped. The type of an
// entry must be its stream's, of a Pub/Sub message its channel's.
var binding = cloudevents.Binding{MetaPrefix: "meta-", Strict: true}

const fieldData = "data"

// streamValues returns m as XADD field-value pairs.
func streamValues(m *driver.Message) []any {
	v := make([]any, 0, 14+2*len(m.Metadata))
	binding.Encode(m, func(name, value string) { v = append(v, boxed(name), boxed(value)) })
	data := m.Data
	if data == nil {
		data = []byte{}
	}
	return append(v, fieldData, data)
}

// boxed returns s as an any, without allocating for the names and values
// every entry has.
func boxed(s string) any {
	switch s {
	case cloudevents.NameSpecVersion:
		return cloudevents.NameSpecVersion
	case cloudevents.SpecVersion:
		return cloudevents.SpecVersion
	case cloudevents.NameID:
		return cloudevents.NameID
	case cloudevents.NameType:
		return cloudevents.NameType
	case cloudevents.NameSource:
		return cloudevents.NameSource
	case cloudevents.NameTime:
		return cloudevents.NameTime
	case cloudevents.NameContentType:
		return cloudevents.NameContentType
	}
	return s
}

// decodeEntry turns a stream entry of the stream of event type typ into a
// message. When the entry is not a valid event it returns the message with
// what could be read (Type, Data) and an error saying why.
func decodeEntry(typ string, values map[string]any) (*driver.Message, error) {
	data, _ := values[fieldData].(string)
	d := binding.NewDecoder(typ, []byte(data))
	for k, v := range values {
		if s, ok := v.(string); ok && k != fieldData {
			d.Add(k, s)
		}
	}
	m, err := d.Message()
	return readable(m, err, nil)
}

// readable adds to a decoder's result what gossip's Publish would refuse:
// a message the driver hands over can be published again as it is (a
// dead letter, a forwarded event), and round-trips. The rule is gossip's
// ID and metadata rule: an ID and metadata keys of 1 to 256 bytes of UTF-8
// without control characters, metadata values (and the other attributes)
// valid UTF-8.
//
// A payload that is refused becomes the message's data, as the decoder
// does with one it cannot read (Pub/Sub: the whole payload); a stream
// entry keeps its data field.
func readable(m *driver.Message, err error, payload []byte) (*driver.Message, error) {
	if err != nil {
		return m, err
	}
	var p []string
	if why := badName(m.ID); why != "" {
		p = append(p, "id "+why)
	}
	if !utf8.ValidString(m.Source) || !utf8.ValidString(m.ContentType) {
		p = append(p, "source or content type not UTF-8")
	}
	for k, v := range m.Metadata {
		if why := badName(k); why != "" {
			p = append(p, fmt.Sprintf("metadata key %q %s", k, why))
		} else if !utf8.ValidString(v) {
			p = append(p, fmt.Sprintf("metadata %q: value not UTF-8", k))
		}
		if len(p) > 3 {
			break // enough to say why
		}
	}
	if len(p) == 0 {
		return m, nil
	}
	if payload != nil {
		m.Data, m.ContentType = payload, "application/octet-stream"
	}
	return m, fmt.Errorf("%w: %s", driver.ErrUnreadable, strings.Join(p, "; "))
}

// badName says what is wrong with an ID or metadata key, or "".
func badName(s string) string {
	switch {
	case s == "" || len(s) > 256:
		return fmt.Sprintf("of %d bytes (1 to 256)", len(s))
	case !utf8.ValidString(s):
		return "not UTF-8"
	case strings.ContainsFunc(s, unicode.IsControl):
		return "with control characters"
	}
	return ""
}

// encodeStructured returns m as a JSON CloudEvent, the Pub/Sub payload.
// The data goes in as it is, never re-encoded: JSON (of a JSON content
// type, without outer white space, which a JSON parser would not hand back)
// as the member "data", byte for byte; anything else as "data_base64".
// cloudevents.EncodeStructured would compact and HTML-escape JSON data.
func encodeStructured(m *driver.Message) ([]byte, error) {
	attrs := *m
	attrs.Data = nil
	b, err := cloudevents.EncodeStructured(&attrs)
	if err != nil || len(m.Data) == 0 {
		return b, err
	}
	b = b[:len(b)-1] // the closing brace
	if isJSON(m.ContentType) && json.Valid(m.Data) && !isSpace(m.Data[0]) && !isSpace(m.Data[len(m.Data)-1]) {
		b = append(append(append(b, `,"data":`...), m.Data...), '}')
		return b, nil
	}
	b = append(b, `,"data_base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, m.Data)
	return append(b, `"}`...), nil
}

// isJSON reports whether a datacontenttype is JSON, as CloudEvents reads
// it: empty (its default in structured mode), application/json, text/json
// or ...+json.
func isJSON(ct string) bool {
	mt := driver.MediaType(ct)
	return mt == "" || mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// decodeStructured parses a JSON CloudEvent received on the channel of event
// type typ.
func decodeStructured(typ string, payload []byte) (*driver.Message, error) {
	m, err := binding.DecodeStructured(typ, payload)
	return readable(m, err, payload)
}
