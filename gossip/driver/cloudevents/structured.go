package cloudevents

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gossipbus/gossip/gossip/driver"
)

// EncodeStructured returns m as a JSON structured-mode CloudEvent: data as
// JSON, byte for byte as it is, when the content type is JSON and the bytes
// are valid JSON without outer white space; else as data_base64. A metadata
// key that is a valid extension attribute name (lower-case ASCII letters
// and digits, at most 20, no standard attribute) or trace context, with a
// value that is not empty (an attribute cannot be), is a string attribute
// of its own. The other keys (any UTF-8) travel in the string attribute
// gossipmetadata, whose value is the JSON
// text of an object of strings in key order, so that every attribute is
// one a CloudEvents SDK accepts.
func EncodeStructured(m *driver.Message) ([]byte, error) {
	var data []byte // spliced in as it is: json.Marshal would compact and HTML-escape it
	base64Data := false
	if len(m.Data) > 0 {
		// An empty content type would read back as JSON: such bytes go as
		// base64, as do bytes the decoder would trim.
		if m.ContentType != "" && isJSON(m.ContentType) && json.Valid(m.Data) && len(bytes.TrimSpace(m.Data)) == len(m.Data) {
			data = m.Data
		} else {
			base64Data = true
		}
	}
	n := 128 + len(m.ID) + len(m.Type) + len(m.Source) + len(m.ContentType) + len(data) + base64.StdEncoding.EncodedLen(len(m.Data))
	var keys, exts []string // the metadata keys for gossipmetadata, and as attributes
	objN := 2               // the bytes of gossipmetadata's object
	for k, v := range m.Metadata {
		n += 2*(len(k)+len(v)) + 16 // gossipmetadata's value is escaped twice
		objN += len(k) + len(v) + 6
		if v != "" && (isExtensionName(k) || k == "traceparent" || k == "tracestate" || k == "baggage") {
			exts = append(exts, k)
		} else {
			keys = append(keys, k)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, `{"specversion":"`+SpecVersion+`","id":`...)
	b = appendString(b, m.ID)
	b = appendString(append(b, `,"type":`...), m.Type)
	b = appendString(append(b, `,"source":`...), m.Source)
	if !m.Time.IsZero() {
		b = append(append(b, `,"time":"`...), m.Time.UTC().Format(time.RFC3339Nano)...)
		b = append(b, '"')
	}
	if m.ContentType != "" {
		b = appendString(append(b, `,"datacontenttype":`...), m.ContentType)
	}
	if base64Data {
		b = base64.StdEncoding.AppendEncode(append(b, `,"data_base64":"`...), m.Data)
		b = append(b, '"')
	}
	slices.Sort(exts)
	for _, k := range exts {
		b = appendString(append(append(append(b, ',', '"'), k...), '"', ':'), m.Metadata[k])
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		obj := make([]byte, 0, objN)
		obj = append(obj, '{')
		for i, k := range keys {
			if i > 0 {
				obj = append(obj, ',')
			}
			obj = appendString(append(appendString(obj, k), ':'), m.Metadata[k])
		}
		b = appendString(append(b, `,"gossipmetadata":`...), string(append(obj, '}')))
	}
	if data != nil {
		b = append(append(b, `,"data":`...), data...)
	}
	return append(b, '}'), nil
}

// appendString appends s as a JSON string, as encoding/json writes it
// without HTML escaping: '"', '\\' and controls escaped, bytes that are not
// UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}

// DecodeStructured reads payload, a JSON structured-mode CloudEvent, as an
// event of type typ. Extension attributes and the members of gossipmetadata
// (a string holding a JSON object, or the object itself as gossip wrote it
// before) become metadata. Errors are as Decoder.Message's.
func (b *Binding) DecodeStructured(typ string, payload []byte) (*driver.Message, error) {
	return b.structured(&driver.Message{Type: typ}, payload)
}

func (b *Binding) structured(m *driver.Message, payload []byte) (*driver.Message, error) {
	var specversion, id, typ, source, tm, ct, data, data64, meta []byte
	type member struct {
		name  string
		value []byte
	}
	var ext []member // the other members, in order
	ok := json.Valid(payload) && members(payload, func(name, v []byte) {
		switch string(name) {
		case "specversion":
			specversion = v
		case "id":
			id = v
		case "type":
			typ = v
		case "source":
			source = v
		case "time":
			tm = v
		case "datacontenttype":
			ct = v
		case "data":
			data = v
		case "data_base64":
			data64 = v
		case "gossipmetadata":
			meta = v
		default:
			if !reserved[string(name)] {
				ext = append(ext, member{string(name), v})
			}
		}
	})
	if !ok {
		// Not a JSON object: encoding/json says why.
		err := json.Unmarshal(payload, new(map[string]json.RawMessage))
		if err == nil {
			err = errors.New("unreadable") // unreachable: a valid object scans
		}
		m.ContentType = ""
		return fail(m, payload, []string{"structured mode with a body that is not a JSON object: " + err.Error()})
	}
	var p []string
	if !utf8.Valid(payload) {
		p = append(p, "structured mode with JSON that is not valid UTF-8") // encoding/json would change its strings
	}
	if !jsonIs(specversion, SpecVersion) {
		p = append(p, fmt.Sprintf("specversion %q is not %q", jsonString(specversion), SpecVersion))
	}
	m.ID, m.Source, m.ContentType = jsonString(id), jsonString(source), jsonString(ct)
	if m.ID == "" {
		p = append(p, "no id")
	}
	if v := jsonString(tm); v != "" {
		p = parseTime(p, m, "time", v)
	}
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
	for _, e := range ext {
		setMeta(m, e.name, jsonString(e.value))
	}
	if meta != nil && meta[0] == '"' { // the JSON text of the object
		if meta = []byte(jsonString(meta)); !json.Valid(meta) {
			meta = []byte("[]") // not an object: the error below
		}
	}
	if meta != nil && !isNull(meta) { // an object too: what gossip wrote before
		strs := true
		obj := members(meta, func(k, v []byte) {
			switch {
			case v[0] == '"':
				setMeta(m, string(k), jsonString(v))
			case isNull(v): // encoding/json reads null as ""
				setMeta(m, string(k), "")
			default:
				strs = false
			}
		})
		if !obj || !strs {
			p = append(p, "gossipmetadata is not an object of strings")
		}
	}
	t := m.Type // the type attribute, most often the transport's
	if t == "" || !jsonIs(typ, t) {
		t = jsonString(typ)
	}
	p = checkType(p, b.Strict, "", "", m, t)
	if len(p) > 0 {
		m.ContentType = "" // the body is the whole document
	}
	return fail(m, payload, p)
}

func isNull(v []byte) bool { return string(v) == "null" }

// members calls f with the name (unescaped) and the value's bytes of each
// member of doc, in order, and reports whether doc is a JSON object. doc
// must be valid JSON (json.Valid): members scans it without checking it
// again. A name without escapes is doc's own bytes: f copies what it keeps.
func members(doc []byte, f func(name, value []byte)) bool {
	i := skipSpace(doc, 0)
	if i == len(doc) || doc[i] != '{' {
		return false
	}
	if i = skipSpace(doc, i+1); doc[i] == '}' {
		return true
	}
	for {
		end := skipString(doc, i)
		name, ok := plainString(doc[i:end])
		if !ok {
			name = []byte(jsonString(doc[i:end]))
		}
		i = skipSpace(doc, skipSpace(doc, end)+1) // past the ':'
		end = skipValue(doc, i)
		f(name, doc[i:end])
		if i = skipSpace(doc, end); doc[i] == '}' {
			return true
		}
		i = skipSpace(doc, i+1) // past the ','
	}
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at doc[i].
func skipString(doc []byte, i int) int {
	for j := i + 1; ; j++ {
		switch doc[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
}

// skipValue returns the index after the value that starts at doc[i].
func skipValue(doc []byte, i int) int {
	switch doc[i] {
	case '"':
		return skipString(doc, i)
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch doc[j] {
			case '"':
				j = skipString(doc, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
	}
	j := i // a number, true, false or null
	for j < len(doc) && doc[j] != ',' && doc[j] != '}' && doc[j] != ']' && doc[j] != ' ' && doc[j] != '\t' && doc[j] != '\n' && doc[j] != '\r' {
		j++
	}
	return j
}

// jsonString is the string a JSON value holds, or the value's JSON text
// when it is no string.
func jsonString(raw json.RawMessage) string {
	if v, ok := plainString(raw); ok {
		return string(v)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return validUTF8(raw)
	}
	return s
}

// plainString returns the text of raw when raw is a JSON string without
// escapes, in valid UTF-8: its bytes between the quotes, as they are.
func plainString(raw []byte) ([]byte, bool) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return raw[1 : n-1], true
	}
	return nil, false
}

// jsonIs reports whether the JSON value raw is the string s, without
// making a string of it when it is a plain one.
func jsonIs(raw []byte, s string) bool {
	if v, ok := plainString(raw); ok {
		return string(v) == s
	}
	return jsonString(raw) == s
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
