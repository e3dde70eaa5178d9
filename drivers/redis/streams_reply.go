package redis

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// A read's reply is parsed here rather than by go-redis: go-redis turns
// every entry into a map[string]any, a string and an interface box per
// field (about 30 allocations for an event's 8 fields, most of a read's).
// readReply takes the reply's RESP bytes as they came (RESP2 or RESP3) and
// makes two allocations per entry: one string holding the entry's ID,
// field names and values, which the message's strings share, and the data.

// readEntries is what one read returned for one of its streams.
type readEntries struct {
	st      *stream
	entries []readEntry
}

// readEntry is one stream entry: its ID, its fields as name, value, name,
// value..., and the value of the data field (nil when it has none).
type readEntry struct {
	id     string
	fields []string
	data   []byte
}

// replyError is an error reply of the server ("NOGROUP ...").
type replyError string

func (e replyError) Error() string { return string(e) }

// errBadReply wraps what does not parse as the reply of XREAD or
// XREADGROUP.
var errBadReply = fmt.Errorf("redis: unexpected reply to a stream read")

// respReader reads RESP values from b.
type respReader struct {
	b []byte
	i int
}

// next reads the header of the next value: its kind byte and its length
// (the count of an aggregate, the size of a bulk string), -1 for a nil.
// An error reply is returned as a replyError.
func (r *respReader) next() (kind byte, n int, err error) {
	j := bytes.IndexByte(r.b[r.i:], '\n')
	if j < 1 || r.b[r.i+j-1] != '\r' {
		return 0, 0, fmt.Errorf("%w: truncated at byte %d", errBadReply, r.i)
	}
	line := r.b[r.i : r.i+j-1]
	r.i += j + 1
	if len(line) == 0 {
		return 0, 0, fmt.Errorf("%w: empty line", errBadReply)
	}
	kind = line[0]
	switch kind {
	case '-':
		return kind, 0, replyError(line[1:])
	case '_':
		return kind, -1, nil
	case '*', '%', '$', '!', '~':
	default:
		return kind, 0, fmt.Errorf("%w: type %q", errBadReply, kind)
	}
	if n, err = atoi(line[1:]); err != nil {
		return kind, 0, err
	}
	if kind == '!' { // a blob error
		msg, err := r.blob(n)
		if err != nil {
			return kind, 0, err
		}
		return kind, 0, replyError(msg)
	}
	return kind, n, nil
}

// blob returns the n bytes of a bulk string whose header was read.
func (r *respReader) blob(n int) ([]byte, error) {
	if n < 0 || r.i+n+2 > len(r.b) {
		return nil, fmt.Errorf("%w: bulk string of %d bytes at byte %d", errBadReply, n, r.i)
	}
	v := r.b[r.i : r.i+n]
	r.i += n + 2
	return v, nil
}

// bulk reads a bulk string.
func (r *respReader) bulk() ([]byte, error) {
	kind, n, err := r.next()
	if err != nil {
		return nil, err
	}
	if kind != '$' || n < 0 {
		return nil, fmt.Errorf("%w: type %q where a string was expected", errBadReply, kind)
	}
	return r.blob(n)
}

// aggregate reads the header of an array (or a set, or a map, counted in
// elements, so two per pair); -1 for a nil.
func (r *respReader) aggregate() (int, error) {
	kind, n, err := r.next()
	switch {
	case err != nil:
		return 0, err
	case kind == '_' || n < 0 && (kind == '*' || kind == '%'):
		return -1, nil
	case n > len(r.b)-r.i: // each element takes bytes
		return 0, fmt.Errorf("%w: %d elements in %d bytes", errBadReply, n, len(r.b)-r.i)
	case kind == '*' || kind == '~':
		return n, nil
	case kind == '%':
		return 2 * n, nil
	}
	return 0, fmt.Errorf("%w: type %q where an array was expected", errBadReply, kind)
}

func atoi(b []byte) (int, error) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, fmt.Errorf("%w: bad length %q", errBadReply, b)
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: bad length %q", errBadReply, b)
		}
		n = 10*n + int(c-'0')
	}
	if neg {
		return -n, nil
	}
	return n, nil
}

// parseRead parses the reply of XREAD or XREADGROUP: per stream (a map in
// RESP3, an array of pairs in RESP2) its entries. Streams not in streams
// are skipped. A nil reply (nothing came within Block) is goredis.Nil.
func parseRead(b []byte, streams []*stream) ([]readEntries, error) {
	r := &respReader{b: b}
	kind := byte(0)
	if len(b) > 0 {
		kind = b[0]
	}
	n, err := r.aggregate()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, goredis.Nil
	}
	if kind == '%' {
		n /= 2
	}
	res := make([]readEntries, 0, n)
	var fields []string // every entry's, one array
	for range n {
		if kind != '%' {
			if m, err := r.aggregate(); err != nil || m != 2 {
				return nil, badShape(err, "stream")
			}
		}
		key, err := r.bulk()
		if err != nil {
			return nil, err
		}
		var st *stream
		for _, s := range streams {
			if s.key == string(key) {
				st = s
				break
			}
		}
		m, err := r.aggregate()
		if err != nil {
			return nil, err
		}
		re := readEntries{st: st, entries: make([]readEntry, 0, max(m, 0))}
		for i := range m {
			var e readEntry
			if e, fields, err = r.entry(fields, m-i); err != nil {
				return nil, err
			}
			re.entries = append(re.entries, e)
		}
		if st != nil {
			res = append(res, re)
		}
	}
	return res, nil
}

func badShape(err error, what string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: a %s is not a pair", errBadReply, what)
}

// span is where a bulk string's bytes are in the reply.
type span struct{ from, to int }

// entry reads one entry, [id, [name, value, ...]], appending its fields
// but the data field to fields. An entry without fields (deleted) has
// none. A data field given twice is the last one, as in a map.
// left is how many entries are left to read, this one included: fields
// grows once for them all when they are like this one.
func (r *respReader) entry(fields []string, left int) (readEntry, []string, error) {
	var e readEntry
	if m, err := r.aggregate(); err != nil || m != 2 {
		return e, fields, badShape(err, "stream entry")
	}
	// First the spans of the ID, names and values, then one string they
	// become substrings of.
	var arr [24]span
	spans := arr[:0]
	id, err := r.bulk()
	if err != nil {
		return e, fields, err
	}
	spans = append(spans, span{r.i - 2 - len(id), r.i - 2})
	k, err := r.aggregate()
	if err != nil {
		return e, fields, err
	}
	if k > 0 && k%2 != 0 {
		return e, fields, fmt.Errorf("%w: an entry has %d field names and values", errBadReply, k)
	}
	for range max(k, 0) {
		v, err := r.bulk()
		if err != nil {
			return e, fields, err
		}
		spans = append(spans, span{r.i - 2 - len(v), r.i - 2})
	}
	// One string of the ID and the names and values but data's.
	size := 0
	for j, sp := range spans {
		if j%2 == 1 && string(r.b[sp.from:sp.to]) == fieldData {
			v := spans[j+1]
			e.data = r.b[v.from:v.to]
			spans[j], spans[j+1] = span{}, span{} // left out
			continue
		}
		size += sp.to - sp.from
	}
	var sb strings.Builder
	sb.Grow(size)
	for _, sp := range spans {
		sb.Write(r.b[sp.from:sp.to])
	}
	s, at := sb.String(), 0
	sub := func(sp span) string {
		v := s[at : at+sp.to-sp.from]
		at += len(v)
		return v
	}
	e.id = sub(spans[0])
	if n := len(spans) - 1; cap(fields)-len(fields) < n {
		fields = slices.Grow(fields, n*min(left, (len(r.b)-r.i)/4+1))
	}
	from := len(fields)
	for j := 1; j+1 < len(spans); j += 2 {
		if name, value := sub(spans[j]), sub(spans[j+1]); spans[j] != (span{}) {
			fields = append(fields, name, value)
		}
	}
	if e.data != nil {
		e.data = append([]byte(nil), e.data...) // the message's own: r.b is reused
	}
	e.fields = fields[from:len(fields):len(fields)]
	return e, fields, nil
}
