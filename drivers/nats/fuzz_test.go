package nats

import (
	"bytes"
	"net/textproto"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip/driver"
)

// headerBlock writes h as nats.go puts it on the wire: values trimmed, CR
// and LF as spaces.
func headerBlock(h natsgo.Header) []byte {
	var b bytes.Buffer
	b.WriteString("NATS/1.0\r\n")
	for k, vs := range h {
		for _, v := range vs {
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(textproto.TrimString(v))
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// FuzzDecodeMessage feeds the NATS wire decoder a subject, a raw header
// block and a body: it never panics, and what it accepts is an event that
// encodes, crosses the wire and decodes to the same event.
func FuzzDecodeMessage(f *testing.F) {
	valid := "NATS/1.0\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-type: a.b\r\nce-source: s\r\ncontent-type: application/json\r\n\r\n"
	f.Add("gossip.a.b", []byte(valid), []byte(`{"n":1}`))
	f.Add("gossip.a.b", []byte("NATS/1.0\r\nCe-Id: x%20y\r\nCe-Specversion: 1.0\r\nCE-TIME: 2026-01-02T03:04:05+02:00\r\nGossip-Meta-K%0A: %22v%22\r\nce-tenant: acme\r\n\r\n"), []byte("x"))
	f.Add("gossip.a$b", []byte(valid), []byte(`{}`))
	f.Add("gossip.a.b", []byte("NATS/1.0\r\ncontent-type: application/cloudevents+json\r\n\r\n"),
		[]byte(`{"specversion":"1.0","id":"9","source":"s","data":{"k":[1,2]},"ext":"v","gossipmetadata":{"a b":"c\r\n"}}`))
	f.Add("gossip.a.b", []byte("NATS/1.0\r\nce-specversion: 1.0\r\nce-id: caf\xe9\r\n\r\n"), []byte{})
	f.Add("gossip.a.b", []byte("NATS/1.0 503\r\n\r\n"), []byte(nil))
	c := &Conn{cfg: config{prefix: "gossip"}}
	f.Fuzz(func(t *testing.T, subject string, block, body []byte) {
		h, err := natsgo.DecodeHeadersMsg(block)
		if err != nil {
			return // nats.go hands such a message over without headers
		}
		m, err := c.decode(subject, h, body)
		require.NotNil(t, m)
		if err != nil {
			assert.ErrorIs(t, err, driver.ErrUnreadable)
			return
		}
		if !publishable(m) {
			return // another producer's empty or overlong key: gossip's to refuse, not the wire's
		}
		wire := encodeMessage(subject, m, "")
		h2, err := natsgo.DecodeHeadersMsg(headerBlock(wire.Header))
		require.NoError(t, err, "the header block gossip writes parses")
		again, err := c.decode(subject, h2, wire.Data)
		require.NoError(t, err, "what was accepted decodes again")
		assert.True(t, m.Time.Equal(again.Time), "time %v, then %v", m.Time, again.Time)
		m.Time = again.Time
		assert.Equal(t, m, again)
	})
}

// publishable reports whether gossip's Publish takes m's ID and metadata:
// IDs and keys of 1 to 256 bytes of UTF-8 without control characters,
// values of UTF-8.
func publishable(m *driver.Message) bool {
	name := func(s string) bool {
		return len(s) >= 1 && len(s) <= 256 && utf8.ValidString(s) &&
			!strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Cc, r) })
	}
	if !name(m.ID) {
		return false
	}
	for k, v := range m.Metadata {
		if !name(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

// FuzzParseURL feeds the URL parser URLs whose password holds the marker
// TOPSECRET and anything after it: it never panics, and no error quotes
// the password.
func FuzzParseURL(f *testing.F) {
	f.Add("alice", "pw", "127.0.0.1:4222", "mode=core")
	f.Add("u", "/#?%", "a:4222,b:4222", "prefix=x&replicas=3")
	f.Add("u", "?mode=x", "h", "")
	f.Add("u", "1234/x", "h:4222", "max_age=-1h")
	f.Add("", ",x", "h:1", "colour=red")
	f.Add("u", "%zz", "[::1]:4222", "name=a%40b")
	f.Fuzz(func(t *testing.T, user, tail, host, query string) {
		clean := func(s string) string { return strings.ReplaceAll(s, "TOPSECRET", "") }
		dsn := "nats://" + clean(user) + ":TOPSECRET" + tail + "@" + clean(host)
		if query != "" {
			dsn += "?" + clean(query)
		}
		cfg := defaultConfig()
		_, err := parseURL(dsn, &cfg)
		if err == nil {
			err = cfg.validate()
		}
		if err != nil {
			assert.NotContains(t, err.Error(), "TOPSECRET", "dsn %q", dsn)
		}
	})
}
