package redis

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Stream entry fields: the CloudEvents attributes as fields, data in one
// field. No official CloudEvents binding for Redis exists; this one is
// gossip's and is documented in docs/drivers/redis.md.
const (
	fieldSpecVersion = "ce-specversion"
	fieldID          = "ce-id"
	fieldType        = "ce-type"
	fieldSource      = "ce-source"
	fieldTime        = "ce-time"
	fieldContentType = "content-type"
	fieldData        = "data"
	// metaPrefix prefixes a metadata key as a field name. Field names are
	// binary-safe, so any UTF-8 key is written as it is.
	metaPrefix  = "meta-"
	ceExtPrefix = "ce-"

	specVersion = "1.0"
)

// traceFields travel as fields of their own, named as the W3C headers are.
var traceFields = map[string]bool{"traceparent": true, "tracestate": true, "baggage": true}

// errCorrupt is wrapped by every error about an entry or payload that is not
// a gossip (CloudEvents) event.
var errCorrupt = fmt.Errorf("%w: redis: not a CloudEvents entry", driver.ErrUnreadable)

// streamValues returns m as XADD field-value pairs.
func streamValues(m *driver.Message) []any {
	v := make([]any, 0, 14+2*len(m.Metadata))
	v = append(v,
		fieldSpecVersion, specVersion,
		fieldID, m.ID,
		fieldType, m.Type,
		fieldSource, m.Source,
		fieldTime, m.Time.UTC().Format(time.RFC3339Nano),
	)
	if m.ContentType != "" {
		v = append(v, fieldContentType, m.ContentType)
	}
	for k, val := range m.Metadata {
		if traceFields[k] {
			v = append(v, k, val)
		} else {
			v = append(v, metaPrefix+k, val)
		}
	}
	data := m.Data
	if data == nil {
		data = []byte{}
	}
	return append(v, fieldData, data)
}

// decodeEntry turns a stream entry of the stream of event type typ into a
// message. When the entry is not a valid event it returns the message with
// what could be read (Type, Data) and an error saying why.
func decodeEntry(typ string, values map[string]any) (*driver.Message, error) {
	m := &driver.Message{Type: typ}
	str := func(k string) (string, bool) {
		v, ok := values[k]
		if !ok {
			return "", false
		}
		s, ok := v.(string)
		return s, ok
	}
	if d, ok := str(fieldData); ok {
		m.Data = []byte(d)
	} else {
		m.Data = []byte{}
	}
	var problems []string
	sv, ok := str(fieldSpecVersion)
	switch {
	case !ok:
		problems = append(problems, "no "+fieldSpecVersion+" field")
	case sv != specVersion:
		problems = append(problems, fmt.Sprintf("%s %q is not %q", fieldSpecVersion, sv, specVersion))
	}
	if m.ID, ok = str(fieldID); !ok || m.ID == "" {
		problems = append(problems, "no "+fieldID+" field")
	}
	if t, ok := str(fieldType); !ok || t == "" {
		problems = append(problems, "no "+fieldType+" field")
	} else if t != typ {
		problems = append(problems, fmt.Sprintf("%s %q in the stream of %q", fieldType, t, typ))
	}
	if m.Source, ok = str(fieldSource); !ok || m.Source == "" {
		problems = append(problems, "no "+fieldSource+" field")
	}
	if ts, ok := str(fieldTime); ok && ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %q is not RFC 3339", fieldTime, ts))
		}
		m.Time = t
	}
	if ct, ok := str(fieldContentType); ok {
		m.ContentType = ct
	} else if ct, ok := str("ce-datacontenttype"); ok {
		m.ContentType = ct
	}
	for k, v := range values {
		s, _ := v.(string)
		var key string
		switch {
		case strings.HasPrefix(k, metaPrefix) && len(k) > len(metaPrefix):
			key = k[len(metaPrefix):]
		case traceFields[k]:
			key = k
		case strings.HasPrefix(k, ceExtPrefix) && !ceAttribute[k[len(ceExtPrefix):]]:
			// A CloudEvents extension attribute of another producer.
			key = k[len(ceExtPrefix):]
		default:
			continue
		}
		if key == "" {
			continue
		}
		if m.Metadata == nil {
			m.Metadata = make(map[string]string, len(values))
		}
		m.Metadata[key] = s
	}
	if len(problems) > 0 {
		return m, fmt.Errorf("%w: %s", errCorrupt, strings.Join(problems, "; "))
	}
	return m, nil
}

// ceAttribute lists the context attributes that are not extensions.
var ceAttribute = map[string]bool{
	"specversion": true, "id": true, "type": true, "source": true, "time": true,
	"datacontenttype": true, "dataschema": true, "subject": true,
}

// structured is a CloudEvent in JSON structured mode, the Pub/Sub payload.
type structured struct {
	SpecVersion     string            `json:"specversion"`
	ID              string            `json:"id"`
	Type            string            `json:"type"`
	Source          string            `json:"source"`
	Time            string            `json:"time,omitempty"`
	DataContentType string            `json:"datacontenttype,omitempty"`
	Data            json.RawMessage   `json:"data,omitempty"`
	DataBase64      string            `json:"data_base64,omitempty"`
	TraceParent     string            `json:"traceparent,omitempty"`
	TraceState      string            `json:"tracestate,omitempty"`
	Baggage         string            `json:"baggage,omitempty"`
	Metadata        map[string]string `json:"gossipmetadata,omitempty"`
}

// isJSON reports whether a datacontenttype is JSON ("application/json",
// "application/cloudevents+json", "text/json", "...+json"). An empty
// content type is JSON too: CloudEvents' default for structured JSON.
func isJSON(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// encodeStructured returns m as a JSON CloudEvent.
func encodeStructured(m *driver.Message) ([]byte, error) {
	ce := structured{
		SpecVersion: specVersion, ID: m.ID, Type: m.Type, Source: m.Source,
		Time: m.Time.UTC().Format(time.RFC3339Nano), DataContentType: m.ContentType,
	}
	if len(m.Data) > 0 {
		if isJSON(m.ContentType) && json.Valid(m.Data) {
			ce.Data = m.Data
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
		default: // an empty trace value too: the attribute would omit it
			if ce.Metadata == nil {
				ce.Metadata = make(map[string]string, len(m.Metadata))
			}
			ce.Metadata[k] = v
		}
	}
	return json.Marshal(&ce)
}

// decodeStructured parses a JSON CloudEvent received on the channel of event
// type typ. Extension attributes it does not know become metadata.
func decodeStructured(typ string, payload []byte) (*driver.Message, error) {
	m := &driver.Message{Type: typ, Data: payload}
	var ce structured
	if err := json.Unmarshal(payload, &ce); err != nil {
		return m, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	var problems []string
	if ce.SpecVersion != specVersion {
		problems = append(problems, fmt.Sprintf("specversion %q is not %q", ce.SpecVersion, specVersion))
	}
	if ce.ID == "" {
		problems = append(problems, "no id")
	}
	if ce.Source == "" {
		problems = append(problems, "no source")
	}
	if ce.Type == "" {
		problems = append(problems, "no type")
	} else if ce.Type != typ {
		problems = append(problems, fmt.Sprintf("type %q on the channel of %q", ce.Type, typ))
	}
	m.ID, m.Source, m.ContentType = ce.ID, ce.Source, ce.DataContentType
	if ce.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, ce.Time)
		if err != nil {
			problems = append(problems, fmt.Sprintf("time %q is not RFC 3339", ce.Time))
		}
		m.Time = t
	}
	switch {
	case ce.DataBase64 != "":
		b, err := base64.StdEncoding.DecodeString(ce.DataBase64)
		if err != nil {
			problems = append(problems, "data_base64 is not base64")
		} else {
			m.Data = b
		}
	case len(ce.Data) > 0 && !isJSON(ce.DataContentType) && ce.Data[0] == '"':
		// Text data of another producer, carried as a JSON string.
		var s string
		if err := json.Unmarshal(ce.Data, &s); err != nil {
			problems = append(problems, "data is not a JSON string")
		} else {
			m.Data = []byte(s)
		}
	case len(ce.Data) > 0:
		m.Data = []byte(ce.Data)
	default:
		m.Data = []byte{}
	}
	if len(problems) > 0 {
		return m, fmt.Errorf("%w: %s", errCorrupt, strings.Join(problems, "; "))
	}
	meta := make(map[string]string, len(ce.Metadata)+3)
	for k, v := range ce.Metadata {
		meta[k] = v
	}
	for k, v := range map[string]string{"traceparent": ce.TraceParent, "tracestate": ce.TraceState, "baggage": ce.Baggage} {
		if v != "" {
			meta[k] = v
		}
	}
	// Extension attributes of other producers.
	var all map[string]json.RawMessage
	if json.Unmarshal(payload, &all) == nil {
		for k, raw := range all {
			if ceAttribute[k] || k == "data" || k == "data_base64" || k == "gossipmetadata" || traceFields[k] {
				continue
			}
			var s string
			if json.Unmarshal(raw, &s) == nil {
				meta[k] = s
			} else {
				meta[k] = string(raw)
			}
		}
	}
	if len(meta) > 0 {
		m.Metadata = meta
	}
	return m, nil
}
