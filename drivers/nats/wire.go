package nats

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Header names of the CloudEvents 1.0 binary mode on NATS, and of the
// metadata gossip carries besides them.
const (
	HeaderID          = "ce-id"
	HeaderType        = "ce-type"
	HeaderSource      = "ce-source"
	HeaderSpecVersion = "ce-specversion"
	HeaderTime        = "ce-time"
	HeaderContentType = "content-type"
	// HeaderMetaPrefix starts the header of a metadata key that is not a
	// CloudEvents extension name; the rest of the header name is the key,
	// percent-encoded.
	HeaderMetaPrefix = "gossip-meta-"
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = "Nats-Msg-Id"

	ceStructured = "application/cloudevents+json"
)

// plainHeaders are metadata keys that travel under their own name: the W3C
// trace context and baggage.
var plainHeaders = map[string]bool{"traceparent": true, "tracestate": true, "baggage": true}

// reservedAttributes are CloudEvents attribute names a metadata key cannot
// take as a ce- header, because they have a meaning of their own.
var reservedAttributes = map[string]bool{
	"id": true, "type": true, "source": true, "specversion": true, "time": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "data": true, "data_base64": true,
}

// isExtensionName reports whether k is a valid CloudEvents extension
// attribute name (lower-case ASCII letters and digits, at most 20) that is
// not a standard attribute.
func isExtensionName(k string) bool {
	if k == "" || len(k) > 20 || reservedAttributes[k] {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// encodeMessage turns m into a NATS message on subject, CloudEvents binary
// mode: attributes and metadata in headers, data in the body. A msgID that
// is not empty goes as Nats-Msg-Id.
func encodeMessage(subject string, m *driver.Message, msgID string) *natsgo.Msg {
	n := 7 + len(m.Metadata)
	h := make(natsgo.Header, n)
	// One backing array for every header's value, instead of one slice per
	// header as Header.Set makes.
	vals := make([]string, 0, n)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(HeaderSpecVersion, "1.0")
	set(HeaderID, m.ID)
	set(HeaderType, m.Type)
	set(HeaderSource, escapeValue(m.Source))
	if !m.Time.IsZero() {
		set(HeaderTime, m.Time.UTC().Format(time.RFC3339Nano))
	}
	if m.ContentType != "" {
		set(HeaderContentType, m.ContentType)
	}
	for k, v := range m.Metadata {
		if plainHeaders[k] && headerSafe(v) {
			// Trace context goes as it is, as W3C propagators write and read
			// it: baggage is percent-encoded already.
			set(k, v)
			continue
		}
		set(metadataHeader(k), escapeValue(v))
	}
	if msgID != "" {
		set(HeaderMsgID, msgID)
	}
	return &natsgo.Msg{Subject: subject, Header: h, Data: m.Data}
}

// headerSafe reports whether v survives as a header value unchanged:
// printable ASCII, without the leading or trailing spaces header parsing
// trims.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return len(v) == 0 || v[0] != ' ' && v[len(v)-1] != ' '
}

// metadataHeader is the header name metadata key k travels under, with its
// value percent-encoded. (Trace context with a header-safe value travels
// under its own name, unencoded.)
func metadataHeader(k string) string {
	switch {
	case isExtensionName(k):
		return "ce-" + k
	default:
		return HeaderMetaPrefix + escapeKey(k)
	}
}

// decodeMessage reads a NATS message as a CloudEvent, binary or structured
// mode. typ is the event type the subject names. The error says why the
// message is not a CloudEvent gossip can read; the returned Message is then
// still filled with what could be read.
// decodeMessage reads msg; an error wraps driver.ErrUnreadable.
func decodeMessage(typ string, msg *natsgo.Msg) (*driver.Message, error) {
	return decode(typ, msg.Header, msg.Data)
}

// decode is decodeMessage of a message's headers and body.
func decode(typ string, h natsgo.Header, data []byte) (*driver.Message, error) {
	m, err := readMessage(typ, h, data)
	if err != nil {
		err = fmt.Errorf("%w: %w", driver.ErrUnreadable, err)
	}
	return m, err
}

func readMessage(typ string, h natsgo.Header, data []byte) (*driver.Message, error) {
	m := &driver.Message{Type: typ, Data: data}
	if m.Data == nil {
		m.Data = []byte{}
	}
	if ct := h.Get(HeaderContentType); strings.HasPrefix(strings.ToLower(ct), ceStructured) && h.Get(HeaderSpecVersion) == "" {
		return decodeStructured(m, h, data)
	}
	var errs []error
	for name, vs := range h {
		if len(vs) == 0 {
			continue
		}
		v := vs[0]
		lname := strings.ToLower(name)
		switch {
		case lname == HeaderSpecVersion:
			if v != "1.0" {
				errs = append(errs, fmt.Errorf("unsupported CloudEvents specversion %q", v))
			}
		case lname == HeaderID:
			m.ID = v
		case lname == HeaderType:
			// The subject is authoritative: it is what subscriptions match.
		case lname == HeaderSource:
			m.Source = unescapeValue(v)
		case lname == HeaderTime:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs = append(errs, fmt.Errorf("bad ce-time %q: %v", v, err))
			}
			m.Time = t
		case lname == HeaderContentType:
			m.ContentType = v
		case strings.HasPrefix(name, HeaderMetaPrefix):
			k, err := unescapeKey(name[len(HeaderMetaPrefix):])
			if err != nil {
				errs = append(errs, fmt.Errorf("bad metadata header %q: %v", name, err))
				k = name
			}
			setMeta(m, k, unescapeValue(v))
		case strings.HasPrefix(lname, "ce-"):
			setMeta(m, lname[3:], unescapeValue(v))
		case plainHeaders[lname]:
			setMeta(m, lname, v)
		case strings.HasPrefix(lname, "nats-"):
			// JetStream's own headers (Nats-Msg-Id, ...) are not metadata.
		default:
			setMeta(m, name, v) // another producer's header, as it is
		}
	}
	if h.Get(HeaderSpecVersion) == "" {
		errs = append(errs, errors.New("not a CloudEvent: no ce-specversion header"))
	} else if m.ID == "" {
		errs = append(errs, errors.New("CloudEvent without ce-id"))
	}
	if len(errs) > 0 {
		if m.ContentType == "" {
			// Unknown bytes: the dead letter keeps them as they are.
			m.ContentType = "application/octet-stream"
		}
		return m, errors.Join(errs...)
	}
	return m, nil
}

// setMeta sets metadata key k, making the map on first use: a message
// without metadata has none.
func setMeta(m *driver.Message, k, v string) {
	if m.Metadata == nil {
		m.Metadata = make(map[string]string, 4)
	}
	m.Metadata[k] = v
}

// decodeStructured reads a structured-mode CloudEvent (the whole event as a
// JSON object in the body).
func decodeStructured(m *driver.Message, h natsgo.Header, data []byte) (*driver.Message, error) {
	for name, vs := range h {
		if len(vs) > 0 && !strings.HasPrefix(strings.ToLower(name), "nats-") && !strings.EqualFold(name, HeaderContentType) {
			setMeta(m, name, vs[0])
		}
	}
	var ce map[string]json.RawMessage
	if err := json.Unmarshal(data, &ce); err != nil {
		return m, fmt.Errorf("structured CloudEvent with a body that is not a JSON object: %v", err)
	}
	str := func(k string) string {
		var s string
		if raw, ok := ce[k]; ok && json.Unmarshal(raw, &s) != nil {
			s = string(raw)
		}
		return s
	}
	if v := str("specversion"); v != "1.0" {
		return m, fmt.Errorf("structured CloudEvent with specversion %q", v)
	}
	m.ID, m.Source, m.ContentType = str("id"), str("source"), str("datacontenttype")
	if m.ID == "" {
		return m, errors.New("structured CloudEvent without id")
	}
	if v := str("time"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return m, fmt.Errorf("structured CloudEvent with bad time %q: %v", v, err)
		}
		m.Time = t
	}
	switch {
	case ce["data_base64"] != nil:
		b, err := base64.StdEncoding.DecodeString(str("data_base64"))
		if err != nil {
			return m, fmt.Errorf("structured CloudEvent with bad data_base64: %v", err)
		}
		m.Data = b
	case ce["data"] != nil:
		m.Data = []byte(ce["data"])
		if m.ContentType == "" {
			m.ContentType = "application/json"
		}
		var s string
		if !strings.Contains(m.ContentType, "json") && json.Unmarshal(ce["data"], &s) == nil {
			m.Data = []byte(s) // a text payload, carried as a JSON string
		}
	default:
		m.Data = []byte{}
	}
	for k := range ce {
		if !reservedAttributes[k] {
			setMeta(m, k, str(k))
		}
	}
	return m, nil
}

// escapeKey percent-encodes every byte of a metadata key outside
// [A-Za-z0-9_.-], so that any UTF-8 key makes a valid header name whose case
// NATS preserves.
func escapeKey(k string) string { return escape(k, isKeyByte) }

func unescapeKey(s string) (string, error) { return unescape(s) }

// escapeValue percent-encodes '%' and every byte outside printable ASCII
// (controls, space, non-ASCII), as the CloudEvents HTTP binding does for
// header values, so leading and trailing spaces and line breaks survive.
func escapeValue(v string) string {
	return escape(v, func(c byte) bool { return c > ' ' && c < 0x7f && c != '%' && c != '"' })
}

// unescapeValue undoes escapeValue; a value that is not valid
// percent-encoding (another producer's) is returned as it is.
func unescapeValue(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	s, err := unescape(v)
	if err != nil {
		return v
	}
	return s
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

func escape(s string, keep func(byte) bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !keep(s[i]) {
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
		c := s[i]
		if keep(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated escape at %d", i)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad escape %q at %d", s[i:i+3], i)
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
