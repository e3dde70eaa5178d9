package nats

import (
	"fmt"
	"strings"
	"sync"

	natsgo "github.com/nats-io/nats.go"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// Header names of the CloudEvents 1.0 binary mode on NATS, and of the
// metadata gossip carries besides them.
const (
	HeaderID          = cloudevents.NameID
	HeaderType        = cloudevents.NameType
	HeaderSource      = cloudevents.NameSource
	HeaderSpecVersion = cloudevents.NameSpecVersion
	HeaderTime        = cloudevents.NameTime
	HeaderContentType = cloudevents.NameContentType
	// HeaderMetaPrefix starts the header of a metadata key that is not a
	// CloudEvents extension name; the rest of the header name is the key,
	// percent-encoded.
	HeaderMetaPrefix = "gossip-meta-"
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = "Nats-Msg-Id"
)

// binding is the CloudEvents mapping on NATS headers: text, so names and
// values are escaped; extension names travel as ce-<key>; the subject, not
// ce-type, says the type, and a ce-type that differs is kept as metadata
// (cloudevents.MetaForeignType).
var binding = cloudevents.Binding{MetaPrefix: HeaderMetaPrefix, Extensions: true, Escape: true}

// wireMsg is an event as a NATS message, with the memory of its headers.
// encodeMessage takes one from wireMsgs and release gives it back once
// nats.go no longer needs it: when a core publish returns (nats.go has
// copied it into its buffer), or when a JetStream publish has its PubAck
// (until then nats.go may send it again).
type wireMsg struct {
	natsgo.Msg
	vals []string // every header's value, one backing array
}

var wireMsgs = sync.Pool{New: func() any { return &wireMsg{Msg: natsgo.Msg{Header: natsgo.Header{}}} }}

// encodeMessage turns m into a NATS message on subject, CloudEvents binary
// mode: attributes and metadata in headers, data in the body. A msgID that
// is not empty goes as Nats-Msg-Id.
func encodeMessage(subject string, m *driver.Message, msgID string) *wireMsg {
	w := wireMsgs.Get().(*wireMsg)
	w.Subject, w.Data = subject, m.Data
	h, vals := w.Header, w.vals
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	binding.Encode(m, set)
	if msgID != "" {
		set(HeaderMsgID, cloudevents.EscapeValue(msgID))
	}
	w.vals = vals
	return w
}

// release gives w back to wireMsgs, holding no event.
func (w *wireMsg) release() {
	clear(w.Header)
	clear(w.vals)
	w.vals = w.vals[:0]
	w.Msg = natsgo.Msg{Header: w.Header}
	wireMsgs.Put(w)
}

// decodeMessage reads a message's headers and body as a CloudEvent, binary
// or structured mode, of type typ, the type its subject names. An error
// wraps driver.ErrUnreadable and says why; the Message then holds what could
// be read and the body as it is.
func decodeMessage(typ string, h natsgo.Header, data []byte) (*driver.Message, error) {
	d := binding.NewDecoder(typ, data)
	for name, vs := range h {
		// JetStream's own headers (Nats-Msg-Id, ...) are not metadata.
		if len(vs) > 0 && !(len(name) > 5 && strings.EqualFold(name[:5], "nats-")) {
			d.Add(name, vs[0])
		}
	}
	return d.Message()
}

// decode reads a message that arrived on subject. A subject that names no
// valid event type (another producer's "a$b" under a wildcard) is an
// unreadable message, dead-lettered with the reason.
func (c *Conn) decode(subject string, h natsgo.Header, data []byte) (*driver.Message, error) {
	typ := c.eventType(subject)
	m, err := decodeMessage(typ, h, data)
	if terr := driver.ValidateType(typ); terr != nil {
		reason := fmt.Sprintf("subject %q names no valid event type: %v", subject, terr)
		if err != nil {
			reason += "; " + err.Error()
		}
		err = fmt.Errorf("%w: %s", driver.ErrUnreadable, reason)
	}
	return m, err
}
