package gossip

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sync"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Codec turns payloads into bytes and back. The JSON codec is the default;
// set Config.Codec for another (protobuf, msgpack). A bus decodes incoming
// events with the codec whose ContentType matches the event's content type,
// among Config.Codec, Config.ExtraCodecs and JSON.
type Codec interface {
	// ContentType is the MIME type written as the CloudEvents
	// datacontenttype, e.g. "application/json".
	ContentType() string
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default codec: encoding/json, content type application/json.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) ContentType() string             { return "application/json" }
func (jsonCodec) Marshal(v any) ([]byte, error)   { return json.Marshal(v) }
func (jsonCodec) Unmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
func (jsonCodec) encodeRaw(v any) ([]byte, bool)  { r, ok := v.(json.RawMessage); return r, ok }

// codecSet is a bus's codecs, shared by every event it delivers.
type codecSet struct {
	primary Codec
	byType  map[string]Codec
}

func newCodecSet(primary Codec, extra []Codec) *codecSet {
	if primary == nil {
		primary = JSON
	}
	cs := &codecSet{primary: primary, byType: map[string]Codec{}}
	for _, c := range append([]Codec{JSON}, append(extra, primary)...) {
		cs.byType[driver.MediaType(c.ContentType())] = c
	}
	return cs
}

var defaultCodecs = newCodecSet(JSON, nil)

func (cs *codecSet) def() Codec {
	if cs == nil {
		return JSON
	}
	return cs.primary
}

// encode returns the payload's bytes. Raw JSON from a delivered event is
// passed through as it is, so a dead letter or a forwarded event keeps the
// exact bytes it came with.
func (cs *codecSet) encode(v any) ([]byte, string, error) {
	c := cs.def()
	if jc, ok := c.(jsonCodec); ok {
		if raw, ok := jc.encodeRaw(v); ok {
			return raw, c.ContentType(), nil
		}
	}
	if v == nil {
		return nil, c.ContentType(), nil
	}
	b, err := c.Marshal(v)
	return b, c.ContentType(), err
}

// encodeReused is encode into a buffer from jsonBuffers when the codec is
// JSON: the bytes are the buffer's until it is released, which its caller
// does once the transport no longer holds them (a driver.DataCopier's
// Publish returned nil). jb is nil when the bytes are the caller's to keep.
func (cs *codecSet) encodeReused(v any) (b []byte, ct string, jb *jsonBuffer, err error) {
	c := cs.def()
	jc, ok := c.(jsonCodec)
	if !ok || v == nil {
		b, ct, err = cs.encode(v)
		return b, ct, nil, err
	}
	if raw, ok := jc.encodeRaw(v); ok {
		return raw, c.ContentType(), nil, nil
	}
	jb = jsonBuffers.Get().(*jsonBuffer)
	if err := jb.enc.Encode(v); err != nil {
		jb.release()
		return nil, "", nil, err
	}
	b = jb.buf.Bytes()
	return b[:len(b)-1], c.ContentType(), jb, nil // Encode ends the value with a newline; Marshal does not
}

// jsonBuffer is a JSON encoder and the buffer it writes to, kept for reuse
// in jsonBuffers: json.Marshal copies its output into a new slice per
// event, which a transport that copies the data anyway does not need.
// Encoder.Encode writes what Marshal returns (HTML escaped, compact), and a
// newline.
type jsonBuffer struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonBuffers = sync.Pool{New: func() any {
	jb := new(jsonBuffer)
	jb.enc = json.NewEncoder(&jb.buf)
	return jb
}}

// maxReusedJSON is the largest buffer kept for reuse: an occasional large
// event does not pin its memory in the pool.
const maxReusedJSON = 64 << 10

func (jb *jsonBuffer) release() {
	if jb.buf.Cap() > maxReusedJSON {
		return
	}
	jb.buf.Reset()
	jsonBuffers.Put(jb)
}

func (cs *codecSet) decode(contentType string, b []byte, v any, e *Event) error {
	if cs == nil {
		cs = defaultCodecs
	}
	c := cs.primary
	if contentType != "" {
		var ok bool
		if c, ok = cs.byType[driver.MediaType(contentType)]; !ok {
			// No codec for it (text/plain, application/octet-stream from
			// another producer): the bytes themselves are still readable.
			switch p := v.(type) {
			case *[]byte:
				*p = append([]byte(nil), b...)
				return nil
			case *string:
				*p = string(b)
				return nil
			}
			return &DecodeError{EventID: e.ID, Type: e.Type, Err: errUnknownContentType(contentType)}
		}
	}
	if err := c.Unmarshal(b, v); err != nil {
		return &DecodeError{EventID: e.ID, Type: e.Type, Err: err}
	}
	return nil
}

// assign stores src into *dst, a non-nil pointer to a T, when that needs no
// conversion: src is a T, a *T (its value is copied), or T is *U and src a U.
// It reports whether it did.
func assign(src, dst any) bool {
	if src == nil {
		return false
	}
	dv := reflect.ValueOf(dst)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		return false
	}
	target := dv.Elem()
	sv := reflect.ValueOf(src)
	switch {
	case sv.Type() == target.Type():
		target.Set(sv)
		return true
	case sv.Kind() == reflect.Pointer && !sv.IsNil() && sv.Elem().Type() == target.Type():
		target.Set(sv.Elem())
		return true
	case target.Kind() == reflect.Pointer && sv.Type() == target.Type().Elem():
		p := reflect.New(sv.Type())
		p.Elem().Set(sv)
		target.Set(p)
		return true
	}
	return false
}
