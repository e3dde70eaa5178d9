package redis_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// hostileCase is one raw message another producer writes: a stream entry's
// field list (Streams) or a PUBLISH payload (Pub/Sub). Every one carries
// its name: as the field "case", or as "case=<name>" in its bytes.
type hostileCase struct {
	name   string
	fields []any  // Streams: XADD field-value pairs, without "case"
	body   []byte // Pub/Sub: the payload
	reason string // what the dead letter's error says; "" for a valid event
}

const hostileType = "hostile.in"

// ce returns the fields of a valid binary-mode entry of hostileType, with
// extra fields (which override).
func ce(id string, extra ...any) []any {
	f := []any{"ce-specversion", "1.0", "ce-id", id, "ce-type", hostileType, "ce-source", "elsewhere",
		"content-type", "application/json", "data", `{"ok":true}`}
	for i := 0; i+1 < len(extra); i += 2 {
		replaced := false
		for j := 0; j+1 < len(f); j += 2 {
			if f[j] == extra[i] {
				f[j+1], replaced = extra[i+1], true
			}
		}
		if !replaced {
			f = append(f, extra[i], extra[i+1])
		}
	}
	return f
}

// structured returns a valid structured-mode payload of hostileType with
// members replaced or added (a nil value removes the member).
func structured(id string, members ...string) []byte {
	m := [][2]string{{"specversion", `"1.0"`}, {"id", `"` + id + `"`}, {"type", `"` + hostileType + `"`},
		{"source", `"elsewhere"`}, {"datacontenttype", `"application/json"`}, {"data", `{"ok":true}`}}
	for i := 0; i+1 < len(members); i += 2 {
		replaced := false
		for j := range m {
			if m[j][0] == members[i] {
				m[j][1], replaced = members[i+1], true
			}
		}
		if !replaced {
			m = append(m, [2]string{members[i], members[i+1]})
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for _, kv := range m {
		if kv[1] == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", kv[0], kv[1])
	}
	b.WriteByte('}')
	return b.Bytes()
}

func streamCases() []hostileCase {
	many := ce("many-fields")
	for i := range 3000 {
		many = append(many, fmt.Sprintf("x-field-%04d", i), "v")
	}
	manyBad := []any{"ce-specversion", "1.0", "ce-type", hostileType, "ce-source", "s"}
	for i := range 3000 {
		manyBad = append(manyBad, fmt.Sprintf("x-field-%04d", i), "v")
	}
	return []hostileCase{
		{name: "no specversion", fields: []any{"ce-id", "1", "ce-type", hostileType, "ce-source", "s", "data", "x"}, reason: "no ce-specversion"},
		{name: "specversion 0.3", fields: ce("v03", "ce-specversion", "0.3"), reason: `"0.3" is not "1.0"`},
		{name: "no id", fields: []any{"ce-specversion", "1.0", "ce-type", hostileType, "ce-source", "s"}, reason: "no ce-id"},
		{name: "no source", fields: []any{"ce-specversion", "1.0", "ce-id", "nosrc", "ce-type", hostileType}, reason: "no ce-source"},
		{name: "type mismatch", fields: ce("mismatch", "ce-type", "hostile.other")}, // kept as metadata ce-type
		{name: "bad time", fields: ce("badtime", "ce-time", "yesterday"), reason: "not RFC 3339"},
		{name: "CR LF in id", fields: ce("a\r\nb"), reason: "has the control character U+000D"},
		{name: "Latin-1 id", fields: ce("caf\xe9"), reason: "not valid UTF-8"},
		{name: "Latin-1 metadata", fields: ce("latin-meta", "meta-city", "Z\xfcrich"), reason: "not valid UTF-8"},
		{name: "garbage", fields: []any{"\x00\xff", "\xfe", "data", "\x00garbage\xff"}, reason: "no ce-specversion"},
		{name: "10 MB body", fields: []any{"data", strings.Repeat("z", 10<<20)}, reason: "no ce-specversion"},
		{name: "thousands of fields, no id", fields: manyBad, reason: "no ce-id"},
		{name: "JSON label, not JSON", fields: ce("notjson", "data", "not json <b>"), reason: "invalid character"},
		{name: "CR LF in metadata", fields: ce("crlf-meta", "meta-note", "line1\r\nline2")},
		{name: "thousands of fields", fields: many},
		{name: "empty JSON data", fields: ce("empty-data", "data", ""), reason: "unexpected end of JSON input"},
	}
}

func pubsubCases() []hostileCase {
	meta := `{`
	for i := range 3000 {
		if i > 0 {
			meta += ","
		}
		meta += fmt.Sprintf(`"k%04d":"v"`, i)
	}
	meta += `}`
	return []hostileCase{
		{name: "garbage", body: []byte("case=garbage \x00\xff not json"), reason: "not a JSON object"},
		{name: "JSON array", body: []byte(`["case=array"]`), reason: "not a JSON object"},
		{name: "no specversion", body: structured("case=nospec", "specversion", ""), reason: `specversion "" is not "1.0"`},
		{name: "no id", body: structured("", "id", "", "x", `"case=noid"`), reason: "no id"},
		{name: "type mismatch", body: structured("case=mismatch", "type", `"hostile.other"`)}, // kept as metadata ce-type
		{name: "bad time", body: structured("case=badtime", "time", `"yesterday"`), reason: "not RFC 3339"},
		{name: "bad base64", body: structured("case=b64", "data", "", "data_base64", `"%%%"`), reason: "not base64"},
		{name: "CR LF in id", body: structured(`case=crlf\r\n`), reason: "has the control character U+000D"},
		{name: "Latin-1 id", body: structured("case=latin\xe9"), reason: "not valid UTF-8"},
		{name: "metadata not strings", body: structured("case=metanum", "gossipmetadata", `{"a":1}`), reason: "gossipmetadata is not an object of strings"},
		{name: "10 MB body", body: append([]byte("case=big "), bytes.Repeat([]byte{0xff}, 10<<20)...), reason: "not a JSON object"},
		{name: "JSON label, not JSON", body: structured("case=notjson", "data", "", "data_base64", `"`+base64.StdEncoding.EncodeToString([]byte("case=notjson <b>"))+`"`), reason: "invalid character"},
		{name: "CR LF in metadata", body: structured("crlf-meta", "gossipmetadata", `{"note":"line1\r\nline2"}`)},
		{name: "thousands of metadata", body: structured("many-meta", "gossipmetadata", meta)},
	}
}

// Raw entries and messages another producer writes, hostile or broken,
// interleaved with valid events: every valid one is handled, every bad one
// dead-lettered once with its reason; nothing panics, and the log stays
// short.
func TestHostileInput(t *testing.T) {
	requireRedis(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			logs := newLogCounter()
			bus := newBus(t, withParams(testURL, "mode", m.mode), ns, func(c *gossip.Config) {
				c.Logger = slog.New(logs)
				c.Source = "hostile-test"
			})
			group := ""
			var opts []gossip.SubscribeOption
			cases := pubsubCases()
			if m.mode == "streams" {
				group, opts, cases = "g", []gossip.SubscribeOption{gossip.Group("g")}, streamCases()
			}
			handled := make(chan string, 100)
			_, err := bus.Subscribe(hostileType, gossip.Typed(func(ctx context.Context, e *gossip.Event, v map[string]any) error {
				handled <- e.ID
				return nil
			}), append(opts, gossip.MaxDeliveries(2))...)
			require.NoError(t, err)
			rc := plainClient(t)
			ctx := context.Background()
			nextLetter := rawDeadLetters(t, rc, m.mode, ns, string(gossip.DeadLetterType(group, hostileType)))
			var valid, bad []string
			for i, c := range cases {
				// A valid event before each case.
				e := gossip.NewEvent(hostileType, map[string]int{"i": i})
				require.NoError(t, bus.Publish(ctx, e))
				valid = append(valid, e.ID)
				if m.mode == "streams" {
					fields := append([]any{"case", c.name}, c.fields...)
					require.NoError(t, rc.XAdd(ctx, &goredis.XAddArgs{Stream: ns + ":{" + hostileType + "}:stream", Values: fields}).Err(), c.name)
				} else {
					require.NoError(t, rc.Publish(ctx, ns+":"+hostileType, c.body).Err(), c.name)
				}
				if c.reason == "" {
					valid = append(valid, idOf(c))
				} else {
					bad = append(bad, c.name)
				}
			}
			if m.mode == "streams" {
				// An entry with an odd field list cannot exist: Redis refuses it.
				assert.Error(t, rc.Do(ctx, "XADD", ns+":{"+hostileType+"}:stream", "*", "ce-id", "1", "lonely").Err())
			}
			e := gossip.NewEvent(hostileType, map[string]int{"i": len(cases)})
			require.NoError(t, bus.Publish(ctx, e))
			valid = append(valid, e.ID)

			got := collectUpTo(handled, len(valid), 10*time.Second)
			assert.ElementsMatch(t, valid, got)
			// Dead letters are read raw: one with an ID gossip's rule refuses
			// would not reach a gossip subscription.
			letters := map[string][]string{} // case → the errors of its dead letters
			for range bad {
				name, reason, ok := nextLetter(20 * time.Second)
				if !assert.True(t, ok, "dead letters: got %d of %d", len(letters), len(bad)) {
					break
				}
				letters[name] = append(letters[name], reason)
			}
			for _, c := range cases {
				if c.reason == "" {
					continue
				}
				if assert.Len(t, letters[c.name], 1, "dead letters of %q", c.name) {
					assert.Contains(t, letters[c.name][0], c.reason, c.name)
				}
			}
			// None more (a second dead letter of a case).
			name, _, ok := nextLetter(300 * time.Millisecond)
			assert.False(t, ok, "an extra dead letter: %q", name)
			assert.LessOrEqual(t, len(logs.Lines()), 2*len(bad)+5, "log lines: %q", logs.Lines())
		})
	}
}

// rawDeadLetters reads the dead letters of type dlType as a plain client
// sees them (XREAD of the stream, or a SUBSCRIBE made now), and names the
// case each one is of: its "case" metadata (Streams) or the "case=" tag its
// data holds (Pub/Sub), or the big one, whose data was left out.
func rawDeadLetters(t *testing.T, rc goredis.UniversalClient, mode, ns, dlType string) func(timeout time.Duration) (name, reason string, ok bool) {
	ctx := context.Background()
	name := func(meta map[string]string, data []byte) string {
		if c, ok := meta["case"]; ok {
			return c
		}
		for _, c := range pubsubCases() {
			if tag := caseTag(c); tag != "" && bytes.Contains(data, []byte(tag)) {
				return c.name
			}
		}
		if meta[gossip.MetaDeadLetterDataBytes] != "" {
			return "10 MB body"
		}
		return fmt.Sprintf("unknown: %q", truncate(data))
	}
	if mode == "pubsub" {
		ps := rc.Subscribe(ctx, ns+":"+dlType)
		t.Cleanup(func() { _ = ps.Close() })
		_, err := ps.Receive(ctx)
		require.NoError(t, err)
		return func(timeout time.Duration) (string, string, bool) {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			msg, err := ps.ReceiveMessage(ctx)
			if err != nil {
				return "", "", false
			}
			var ce struct {
				Data       json.RawMessage `json:"data"`
				DataBase64 []byte          `json:"data_base64"`
				Meta       string          `json:"gossipmetadata"` // the JSON text of an object
			}
			require.NoError(t, json.Unmarshal([]byte(msg.Payload), &ce))
			var meta map[string]string
			require.NoError(t, json.Unmarshal([]byte(ce.Meta), &meta))
			return name(meta, append(ce.Data, ce.DataBase64...)), meta[gossip.MetaDeadLetterError], true
		}
	}
	last := "0"
	var pending []goredis.XMessage
	return func(timeout time.Duration) (string, string, bool) {
		deadline := time.Now().Add(timeout)
		for len(pending) == 0 && time.Now().Before(deadline) {
			res, err := rc.XRead(ctx, &goredis.XReadArgs{Streams: []string{ns + ":{" + dlType + "}:stream", last}, Block: time.Until(deadline)}).Result()
			if err != nil {
				break
			}
			pending = res[0].Messages
		}
		if len(pending) == 0 {
			return "", "", false
		}
		e := pending[0]
		pending, last = pending[1:], e.ID
		meta := map[string]string{}
		for k, v := range e.Values {
			// meta-<key>, or ce-<key> for a key that is an extension name
			if k, ok := strings.CutPrefix(k, "meta-"); ok {
				meta[k] = v.(string)
			} else if k, ok := strings.CutPrefix(k, "ce-"); ok {
				meta[k] = v.(string)
			}
		}
		data, _ := e.Values["data"].(string)
		return name(meta, []byte(data)), meta[gossip.MetaDeadLetterError], true
	}
}

// caseTag is the "case=..." text a Pub/Sub case's body holds.
func caseTag(c hostileCase) string {
	i := bytes.Index(c.body, []byte("case="))
	if i < 0 {
		return ""
	}
	end := bytes.IndexAny(c.body[i:], `" \]`)
	if end < 0 {
		end = len(c.body) - i
	}
	return string(c.body[i : i+end])
}

// idOf is the ID of a valid case.
func idOf(c hostileCase) string {
	for i := 0; i+1 < len(c.fields); i += 2 {
		if c.fields[i] == "ce-id" {
			return c.fields[i+1].(string)
		}
	}
	if tag := caseTag(c); tag != "" {
		return strings.ToValidUTF8(tag, "\uFFFD")
	}
	i := bytes.Index(c.body, []byte(`"id":"`))
	rest := c.body[i+6:]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

func truncate(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// collectUpTo receives up to n values from ch, for at most timeout.
func collectUpTo[T any](ch <-chan T, n int, timeout time.Duration) []T {
	var got []T
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(got) < n {
		select {
		case v := <-ch:
			got = append(got, v)
		case <-deadline.C:
			return got
		}
	}
	return got
}
