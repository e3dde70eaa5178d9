package cloudevents

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Names of the CloudEvents attributes in binary mode, as headers or fields.
// They are written in lower case and read in any case.
const (
	NameSpecVersion = "ce-specversion"
	NameID          = "ce-id"
	NameType        = "ce-type"
	NameSource      = "ce-source"
	NameTime        = "ce-time"
	NameContentType = "content-type"

	// SpecVersion is the CloudEvents version written and read.
	SpecVersion = "1.0"
	// StructuredContentType is the content type of a JSON structured-mode
	// event.
	StructuredContentType = "application/cloudevents+json"

	extPrefix = "ce-"
)

// ErrNotCloudEvent is wrapped by every error about an entry (a message, a
// stream entry, a payload) that is not a CloudEvent gossip can read. It
// wraps driver.ErrUnreadable.
var ErrNotCloudEvent = fmt.Errorf("%w: not a CloudEvents entry", driver.ErrUnreadable)

// Binding is how one transport carries the attributes and metadata: the part
// of the mapping that differs between transports. MetaPrefix must be set.
type Binding struct {
	// MetaPrefix, in lower case, starts the name a metadata key travels under
	// when no other convention applies ("gossip-meta-", "meta-").
	MetaPrefix string
	// Extensions writes a metadata key that is a valid CloudEvents extension
	// attribute name as ce-<key>, where CloudEvents SDKs look for it.
	Extensions bool
	// Escape percent-encodes what a text header cannot carry: in names
	// (after MetaPrefix) every byte outside [A-Za-z0-9_.-]; in values of
	// ce-id, ce-source and metadata '%', '"', spaces, controls and non-ASCII
	// bytes, as the CloudEvents HTTP binding does. Trace context goes as it
	// is when a header carries it unchanged. Without Escape, names and values
	// are binary-safe and written as they are.
	Escape bool
	// Strict requires ce-type and ce-source. With or without it the type
	// the transport names (its subject, stream or channel) is the event's
	// type, and a ce-type that differs from it is kept in the metadata key
	// MetaForeignType.
	Strict bool
}

// MetaForeignType is the metadata key that holds the CloudEvents type
// attribute of an event read from a transport naming another type (its
// subject, stream or channel): another producer's "com.example.signup" on
// gossip's subject for "user.created". The event's type stays the
// transport's, which routes it; a handler reads the producer's type here.
const MetaForeignType = "ce-type"

// reserved are the attribute and member names that are not extensions: a
// metadata key cannot take them as one, nor are they read as metadata.
var reserved = map[string]bool{
	"id": true, "type": true, "source": true, "specversion": true, "time": true, "datacontenttype": true,
	"dataschema": true, "subject": true, "data": true, "data_base64": true, "gossipmetadata": true,
}

// isExtensionName reports whether k is a valid CloudEvents extension
// attribute name (lower-case ASCII letters and digits, at most 20) that is
// not a standard attribute.
func isExtensionName(k string) bool {
	if k == "" || len(k) > 20 || reserved[k] {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Encode writes m in binary mode: it calls set once per header or field
// with its name and value (the data is the transport's to write). Time and
// content type are left out when empty.
func (b *Binding) Encode(m *driver.Message, set func(name, value string)) {
	set(NameSpecVersion, SpecVersion)
	set(NameID, b.value(m.ID))
	set(NameType, m.Type)
	set(NameSource, b.value(m.Source))
	if !m.Time.IsZero() {
		set(NameTime, m.Time.UTC().Format(time.RFC3339Nano))
	}
	if m.ContentType != "" {
		set(NameContentType, m.ContentType)
	}
	for k, v := range m.Metadata {
		switch {
		case (k == "traceparent" || k == "tracestate" || k == "baggage") && (!b.Escape || headerSafe(v)):
			set(k, v) // as W3C propagators write and read it
		case b.Extensions && isExtensionName(k):
			set(extPrefix+k, b.value(v))
		case b.Escape:
			set(b.MetaPrefix+escape(k, &keyBytes), EscapeValue(v))
		default:
			set(b.MetaPrefix+k, v)
		}
	}
}

func (b *Binding) value(v string) string {
	if b.Escape {
		return EscapeValue(v)
	}
	return v
}

func (b *Binding) unescape(v string) string {
	if b.Escape {
		return unescapeValue(v)
	}
	return v
}

// Decoder reads one event in binary mode, name by name: Binding.NewDecoder
// makes one, Add takes each header or field, Message returns the event.
// Without ce-specversion, when the content type says structured mode, or
// there is none and the data is a JSON object with a specversion, Message
// reads the data as a JSON structured-mode event, and what was added is
// metadata.
type Decoder struct {
	b               *Binding
	m               *driver.Message
	raw             []byte
	spec, typ, time string
	hasSpec         bool
	problems        []string
}

// NewDecoder starts decoding an event of type typ (the type its subject,
// stream or channel names) with data as its body.
func (b *Binding) NewDecoder(typ string, data []byte) Decoder {
	if data == nil {
		data = []byte{}
	}
	return Decoder{b: b, m: &driver.Message{Type: typ, Data: data}, raw: data}
}

// Add reads one header or field. Names of no convention (another
// producer's) are metadata as they are.
func (d *Decoder) Add(name, value string) {
	// The names gossip writes are in lower case already: only another
	// producer's need the lower-case copy (and the scan that makes it).
	if d.attribute(name, value) {
		return
	}
	if lname := strings.ToLower(name); lname != name && d.attribute(lname, value) {
		return
	}
	d.extension(name, value)
}

// attribute reads a header or field whose name, in lower case, is a
// CloudEvents attribute or trace context, and reports whether it was one.
func (d *Decoder) attribute(lname, value string) bool {
	switch lname {
	case NameSpecVersion:
		d.spec, d.hasSpec = value, true
	case NameID:
		d.m.ID = d.b.unescape(value)
	case NameType:
		d.typ = value
	case NameSource:
		d.m.Source = d.b.unescape(value)
	case NameTime:
		d.time = value
	case NameContentType, "ce-datacontenttype":
		d.m.ContentType = value
	case "traceparent", "tracestate", "baggage":
		setMeta(d.m, lname, value)
	default:
		return false
	}
	return true
}

// extension reads a header or field that is not an attribute: metadata.
func (d *Decoder) extension(name, value string) {
	switch {
	case hasPrefixFold(name, d.b.MetaPrefix):
		k := name[len(d.b.MetaPrefix):]
		if d.b.Escape {
			var err error
			if k, err = unescape(k); err != nil {
				d.problems = append(d.problems, fmt.Sprintf("bad metadata name %q: %v", name, err))
				k = name
			}
		}
		setMeta(d.m, k, d.b.unescape(value))
	case hasPrefixFold(name, extPrefix):
		setMeta(d.m, strings.ToLower(name[len(extPrefix):]), d.b.unescape(value))
	default: // another producer's, as it is
		setMeta(d.m, name, value)
	}
}

// Message returns the event. When it is not a readable CloudEvent the error
// wraps ErrNotCloudEvent and says why, and the Message holds what could be
// read, the body as it came, and application/octet-stream as content type
// when there was none.
func (d *Decoder) Message() (*driver.Message, error) {
	m, p := d.m, d.problems
	if mt := driver.MediaType(m.ContentType); !d.hasSpec && (mt == StructuredContentType ||
		mt == "" && bytes.HasPrefix(bytes.TrimSpace(d.raw), []byte("{")) && bytes.Contains(d.raw, []byte(`"specversion"`))) {
		return d.b.structured(m, d.raw)
	}
	switch {
	case !d.hasSpec:
		p = append(p, "no "+NameSpecVersion+" field")
	case d.spec != SpecVersion:
		p = append(p, fmt.Sprintf("%s %q is not %q", NameSpecVersion, d.spec, SpecVersion))
	}
	if m.ID == "" {
		p = append(p, "no "+NameID+" field")
	}
	p = checkType(p, d.b.Strict, extPrefix, " field", m, d.typ)
	if d.time != "" {
		p = parseTime(p, m, NameTime, d.time)
	}
	return fail(m, d.raw, p)
}

// checkType keeps typ, the type attribute, under MetaForeignType when it
// is not m's type, and appends what strict finds missing (source, type);
// prefix and suffix make the names.
func checkType(p []string, strict bool, prefix, suffix string, m *driver.Message, typ string) []string {
	if typ != "" && typ != m.Type {
		setMeta(m, MetaForeignType, typ)
	}
	if strict {
		if m.Source == "" {
			p = append(p, "no "+prefix+"source"+suffix)
		}
		if typ == "" {
			p = append(p, "no "+prefix+"type"+suffix)
		}
	}
	return p
}

func parseTime(p []string, m *driver.Message, name, v string) []string {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return append(p, fmt.Sprintf("%s %q is not RFC 3339", name, v))
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		// Encode writes UTC, which RFC 3339 cannot hold for this time.
		return append(p, fmt.Sprintf("%s %q is outside the years 0000 to 9999 in UTC", name, v))
	}
	m.Time = t
	return p
}

// fail returns m, and the error of problems p if there are any. A message
// that breaks gossip's rule for IDs, sources and metadata (another
// producer's control characters or Latin-1 bytes) is a problem too:
// gossip hands a handler nothing it could not publish.
func fail(m *driver.Message, raw []byte, p []string) (*driver.Message, error) {
	if len(p) == 0 {
		err := driver.CheckMessage(m)
		if err == nil {
			return m, nil
		}
		p = append(p, err.Error())
	}
	m.Data = raw
	if m.ContentType == "" {
		m.ContentType = "application/octet-stream"
	}
	return m, fmt.Errorf("%w: %s", ErrNotCloudEvent, strings.Join(p, "; "))
}

// setMeta sets metadata key k, making the map on first use: a message
// without metadata has none. An empty key another producer sent is kept:
// gossip, not the wire, decides what to do with it.
func setMeta(m *driver.Message, k, v string) {
	if m.Metadata == nil {
		m.Metadata = make(map[string]string, 4)
	}
	m.Metadata[k] = v
}

// hasPrefixFold reports whether s starts with prefix in any case. s may be
// the prefix alone: the name of an empty metadata key, which only another
// producer writes (Publish refuses it) but which must read back as it was.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// EscapeValue percent-encodes '%', '"' and every byte outside printable
// ASCII (controls, space, non-ASCII), as the CloudEvents HTTP binding does
// for header values, so that leading and trailing spaces and line breaks
// survive a text header.
func EscapeValue(v string) string { return escape(v, &valueBytes) }

// unescapeValue undoes EscapeValue; a value that is not valid
// percent-encoding (another producer's) is returned as it is.
func unescapeValue(v string) string {
	if s, err := unescape(v); err == nil {
		return s
	}
	return v
}

// headerSafe reports whether v survives a header unchanged: printable
// ASCII, without the leading or trailing spaces header parsing trims.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return len(v) == 0 || v[0] != ' ' && v[len(v)-1] != ' '
}

// valueBytes are the bytes a value keeps unescaped; keyBytes those a
// metadata key keeps in a header name: bytes whose case NATS preserves and
// any header syntax accepts.
var valueBytes, keyBytes [256]bool

func init() {
	for c := '!'; c <= '~'; c++ {
		valueBytes[c] = c != '%' && c != '"'
		keyBytes[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
	}
}

func escape(s string, keep *[256]bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !keep[s[i]] {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; keep[c] {
			b.WriteByte(c)
		} else {
			b.Write([]byte{'%', hex[c>>4], hex[c&15]})
		}
	}
	return b.String()
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated escape at %d", i)
		}
		c, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape %q at %d", s[i:i+3], i)
		}
		b.WriteByte(byte(c))
		i += 2
	}
	return b.String(), nil
}
