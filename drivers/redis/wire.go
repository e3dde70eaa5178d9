package redis

import (
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
	return d.Message()
}

// decodeStructured parses a JSON CloudEvent received on the channel of event
// type typ.
func decodeStructured(typ string, payload []byte) (*driver.Message, error) {
	return binding.DecodeStructured(typ, payload)
}
