package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// No official CloudEvents binding for Redis exists; this one is gossip's and
// is documented in docs/drivers/redis.md. Stream entries carry the
// attributes as ce-<name> fields, data in one field; a metadata key that is
// a CloudEvents extension name travels as ce-<key>, any other as
// meta-<key>; field names and values are binary-safe, so nothing is
// escaped. An entry needs ce-type and ce-source; the type of an event is its
// stream's or channel's, and a ce-type that differs is kept as metadata
// (cloudevents.MetaForeignType).
var binding = cloudevents.Binding{MetaPrefix: "meta-", Extensions: true, Strict: true}

const fieldData = "data"

// xadd returns the XADD of m to stream key, trimmed to about maxLen
// entries when maxLen > 0. The fields go in as pointers into one array of
// strings, which go-redis writes as the strings: an any holding a string
// is an allocation each, a pointer is none.
func xadd(ctx context.Context, key any, maxLen *int64, m *driver.Message) *goredis.StringCmd {
	fields := make([]string, 0, 2*(6+len(m.Metadata)))
	binding.Encode(m, func(name, value string) { fields = append(fields, name, value) })
	args := make([]any, 0, 8+len(fields))
	args = append(args, "xadd", key)
	if *maxLen > 0 {
		args = append(args, "maxlen", "~", maxLen)
	}
	return goredis.NewStringCmd(ctx, appendFields(append(args, "*"), fields, m.Data)...)
}

// appendFields appends the field-value pairs fields and then the data field
// to args.
func appendFields(args []any, fields []string, data []byte) []any {
	for i := range fields {
		args = append(args, &fields[i])
	}
	if data == nil {
		data = []byte{}
	}
	return append(args, fieldData, data)
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

// decodeFields turns the field names and values of a stream entry (name,
// value, name, value...) and its data field into a message, as
// decodeEntry does.
func decodeFields(typ string, fields []string, data []byte) (*driver.Message, error) {
	d := binding.NewDecoder(typ, data)
	for i := 0; i+1 < len(fields); i += 2 {
		d.Add(fields[i], fields[i+1])
	}
	return d.Message()
}

// decodeStructured parses a JSON CloudEvent received on the channel of event
// type typ.
func decodeStructured(typ string, payload []byte) (*driver.Message, error) {
	return binding.DecodeStructured(typ, payload)
}
