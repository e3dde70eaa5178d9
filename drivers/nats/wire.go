package nats

import (
	"fmt"
	"strings"

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
// ce-type, says the type.
var binding = cloudevents.Binding{MetaPrefix: HeaderMetaPrefix, Extensions: true, Escape: true}

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
	binding.Encode(m, set)
	if msgID != "" {
		set(HeaderMsgID, cloudevents.EscapeValue(msgID))
	}
	return &natsgo.Msg{Subject: subject, Header: h, Data: m.Data}
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
