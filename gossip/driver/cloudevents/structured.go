package cloudevents

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gossipbus/gossip/gossip/driver"
)

// structured is a JSON structured-mode CloudEvent as EncodeStructured
// writes it. Metadata keys are any UTF-8, which attribute names are not:
// they travel in the object gossipmetadata, except trace context that is not
// empty (an attribute cannot be), which is an attribute of its own.
type structured struct {
	SpecVersion     string            `json:"specversion"`
	ID              string            `json:"id"`
	Type            string            `json:"type"`
	Source          string            `json:"source"`
	Time            string            `json:"time,omitempty"`
	DataContentType string            `json:"datacontenttype,omitempty"`
	DataBase64      string            `json:"data_base64,omitempty"`
	TraceParent     string            `json:"traceparent,omitempty"`
	TraceState      string            `json:"tracestate,omitempty"`
	Baggage         string            `json:"baggage,omitempty"`
	Metadata        map[string]string `json:"gossipmetadata,omitempty"`
}

// EncodeStructured returns m as a JSON structured-mode CloudEvent: data as
// JSON, byte for byte as it is, when the content type is JSON and the bytes
// are valid JSON without outer white space; else as data_base64.
func EncodeStructured(m *driver.Message) ([]byte, error) {
	ce := structured{SpecVersion: SpecVersion, ID: m.ID, Type: m.Type, Source: m.Source, DataContentType: m.ContentType}
	if !m.Time.IsZero() {
		ce.Time = m.Time.UTC().Format(time.RFC3339Nano)
	}
	var data []byte // spliced in as it is: json.Marshal would compact and HTML-escape it
	if len(m.Data) > 0 {
		// An empty content type would read back as JSON: such bytes go as
		// base64, as do bytes the decoder would trim.
		if m.ContentType != "" && isJSON(m.ContentType) && json.Valid(m.Data) && len(bytes.TrimSpace(m.Data)) == len(m.Data) {
			data = m.Data
		} else {
			ce.DataBase64 = base64.StdEncoding.EncodeToString(m.Data)
		}
	}
	for k, v := range m.Metadata {
		switch {
		case k == "traceparent" && v != "":
			ce.TraceParent = v
		case k == "tracestate" && v != "":
			ce.TraceState = v
		case k == "baggage" && v != "":
			ce.Baggage = v
		default:
			if ce.Metadata == nil {
				ce.Metadata = make(map[string]string, len(m.Metadata))
			}
			ce.Metadata[k] = v
		}
	}
	var buf bytes.Buffer
	buf.Grow(256 + len(data) + len(ce.DataBase64))
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&ce); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("}\n"))
	if data != nil {
		out = append(append(out, `,"data":`...), data...)
	}
	return append(out, '}'), nil
}

// DecodeStructured reads payload, a JSON structured-mode CloudEvent, as an
// event of type typ. Extension attributes and the members of gossipmetadata
// become metadata. Errors are as Decoder.Message's.
func (b *Binding) DecodeStructured(typ string, payload []byte) (*driver.Message, error) {
	return b.structured(&driver.Message{Type: typ}, payload)
}

func (b *Binding) structured(m *driver.Message, payload []byte) (*driver.Message, error) {
	var ce map[string]json.RawMessage
	if err := json.Unmarshal(payload, &ce); err != nil {
		m.ContentType = ""
		return fail(m, payload, []string{"structured mode with a body that is not a JSON object: " + err.Error()})
	}
	var p []string
	if !utf8.Valid(payload) {
		p = append(p, "structured mode with JSON that is not valid UTF-8") // encoding/json would change its strings
	}
	if v := jsonString(ce["specversion"]); v != SpecVersion {
		p = append(p, fmt.Sprintf("specversion %q is not %q", v, SpecVersion))
	}
	m.ID, m.Source, m.ContentType = jsonString(ce["id"]), jsonString(ce["source"]), jsonString(ce["datacontenttype"])
	if m.ID == "" {
		p = append(p, "no id")
	}
	if b.Strict {
		p = check(p, "", "", m.Source, jsonString(ce["type"]), m.Type)
	}
	if v := jsonString(ce["time"]); v != "" {
		p = parseTime(p, m, "time", v)
	}
	data, data64 := ce["data"], ce["data_base64"]
	switch {
	case data64 != nil:
		var err error
		if m.Data, err = base64.StdEncoding.DecodeString(jsonString(data64)); err != nil {
			p = append(p, "data_base64 is not base64")
		}
	case data != nil:
		if m.ContentType == "" {
			m.ContentType = "application/json" // what an absent datacontenttype means
		}
		m.Data = data
		if !isJSON(m.ContentType) && data[0] == '"' {
			m.Data = []byte(jsonString(data)) // text carried as a JSON string
		}
	default:
		m.Data = []byte{}
	}
	for k, raw := range ce {
		switch {
		case k == "gossipmetadata":
			var meta map[string]string
			if err := json.Unmarshal(raw, &meta); err != nil {
				p = append(p, "gossipmetadata is not an object of strings")
			}
			for k, v := range meta {
				setMeta(m, k, v)
			}
		case !reserved[k]:
			setMeta(m, k, jsonString(raw))
		}
	}
	if len(p) > 0 {
		m.ContentType = "" // the body is the whole document
	}
	return fail(m, payload, p)
}

// jsonString is the string a JSON value holds, or the value's JSON text
// when it is no string.
func jsonString(raw json.RawMessage) string {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : n-1])
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return validUTF8(raw)
	}
	return s
}

// validUTF8 is b with each byte that is not UTF-8 made U+FFFD, as
// encoding/json reads and writes strings.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var s strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		s.WriteRune(r)
		b = b[n:]
	}
	return s.String()
}

// isJSON reports whether a datacontenttype is JSON ("application/json",
// "text/json", "...+json"). An empty one is JSON too: CloudEvents' default
// in structured mode.
func isJSON(ct string) bool {
	mt := driver.MediaType(ct)
	return mt == "" || mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}
