package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip/driver"
)

// A read's reply parsed by the driver gives the events Publish wrote, on
// RESP2 and RESP3 connections, for a listener (XREAD) and a group member
// (XREADGROUP); a read that finds nothing is goredis.Nil, and a missing
// group is the server's NOGROUP error.
func TestRawReadGivesPublishedEvents(t *testing.T) {
	url := os.Getenv("GOSSIP_REDIS_URL")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("GOSSIP_REDIS_URL is not set; CI needs a real Redis")
		}
		t.Skip("GOSSIP_REDIS_URL is not set")
	}
	for _, protocol := range []int{2, 3} {
		for _, group := range []string{"", "g"} {
			t.Run(fmt.Sprintf("resp%d/group=%q", protocol, group), func(t *testing.T) {
				o, err := goredis.ParseURL(url)
				require.NoError(t, err)
				o.Protocol = protocol
				client := goredis.NewClient(o)
				t.Cleanup(func() { _ = client.Close() })
				prefix := fmt.Sprintf("gt_rawread_%x", rand.Uint32())
				dc, err := New(client, Prefix(prefix), Block(20*time.Millisecond), Logger(slog.New(slog.DiscardHandler)))
				require.NoError(t, err)
				c := dc.(*conn)
				t.Cleanup(func() {
					ctx := context.Background()
					_ = client.Del(ctx, c.streamKey(sampleMessage().Type)).Err()
					_ = c.Close(ctx)
				})

				s, rc := rawSub(t, c, group)
				var buf readState
				sent := []*driver.Message{sampleMessage(), sampleMessage()}
				sent[1].ID, sent[1].Data, sent[1].Metadata = "second", nil, nil
				st := &stream{typ: sent[0].Type, key: c.streamKey(sent[0].Type), lastID: "0"}
				ctx := context.Background()
				if group != "" {
					_, err := s.fetch(rc, []*stream{st}, &buf)
					require.Error(t, err)
					require.True(t, isNoGroup(err), "%v", err)
					_, err = s.position(ctx, []*stream{st}, "0")
					require.NoError(t, err)
				}
				require.NoError(t, c.Publish(ctx, sent))

				res, err := s.fetch(rc, []*stream{st}, &buf)
				require.NoError(t, err)
				require.Len(t, res, 1)
				require.Same(t, st, res[0].st)
				require.Len(t, res[0].entries, 2)
				for i, e := range res[0].entries {
					got, err := decodeFields(st.typ, e.fields, e.data)
					require.NoError(t, err)
					want := *sent[i]
					if want.Data == nil {
						want.Data = []byte{}
					}
					assert.Equal(t, &want, got)
					assert.Regexp(t, `^\d+-\d+$`, e.id)
				}
				require.True(t, s.sendRead(res))
				assert.Equal(t, res[0].entries[1].id, st.lastID, "the listener reads on after the last entry")
				assert.Len(t, s.ch, 2)

				_, err = s.fetch(rc, []*stream{st}, &buf)
				assert.ErrorIs(t, err, goredis.Nil, "nothing more within Block")
			})
		}
	}
}

// rawSub is a Streams subscription without goroutines and the client a
// reader of it reads on, for a test to call fetch.
func rawSub(t *testing.T, c *conn, group string) (*streamSub, *goredis.Client) {
	s := &streamSub{c: c, group: group, consumer: "c", ch: make(chan driver.Delivery, 10), startID: "0"}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(s.cancel)
	rc := s.readerClient(&reader{}, c.client.(*goredis.Client))
	t.Cleanup(func() { _ = rc.Close() })
	require.True(t, s.rawReads(rc), "a reader's own client reads raw")
	return s, rc
}

// A reader's client waits out Block; a client that may time out before
// is read through go-redis, which waits for the reply longer.
func TestRawReadsOnlyWhereTheReplyIsAwaited(t *testing.T) {
	s := &streamSub{c: &conn{opts: options{block: 5 * time.Second}}}
	for _, tc := range []struct {
		timeout time.Duration
		raw     bool
	}{{-2, true}, {-1, true}, {0, false}, {3 * time.Second, false}, {5*time.Second + readMargin, true}} {
		c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", ReadTimeout: tc.timeout})
		assert.Equal(t, tc.raw, s.rawReads(c), "ReadTimeout %v", tc.timeout)
		rc := s.readerClient(&reader{}, c)
		assert.True(t, s.rawReads(rc), "reader client of one with ReadTimeout %v", tc.timeout)
		_ = rc.Close()
		_ = c.Close()
	}
}

// respOf writes entries (each: ID, then field names and values) as the
// reply of a read of stream key, in RESP2 or RESP3.
func respOf(resp3 bool, key string, entries ...[]string) []byte {
	var b strings.Builder
	bulk := func(s string) { fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(s), s) }
	if resp3 {
		b.WriteString("%1\r\n")
	} else {
		b.WriteString("*1\r\n*2\r\n")
	}
	bulk(key)
	fmt.Fprintf(&b, "*%d\r\n", len(entries))
	for _, e := range entries {
		b.WriteString("*2\r\n")
		bulk(e[0])
		fmt.Fprintf(&b, "*%d\r\n", len(e)-1)
		for _, f := range e[1:] {
			bulk(f)
		}
	}
	return []byte(b.String())
}

func TestParseReadShapes(t *testing.T) {
	st := &stream{typ: "t", key: "k"}
	fields := []string{"ce-specversion", "1.0", "ce-id", "1", "ce-type", "t", "ce-source", "s", "data", "a", "data", "x\r\ny"}
	for _, resp3 := range []bool{false, true} {
		res, err := parseRead(respOf(resp3, "k", append([]string{"1-1"}, fields...)), []*stream{st})
		require.NoError(t, err)
		require.Len(t, res, 1)
		e := res[0].entries[0]
		assert.Equal(t, "1-1", e.id)
		assert.Equal(t, []byte("x\r\ny"), e.data, "the last data field, as in a map")
		assert.Equal(t, fields[:8], e.fields)

		res, err = parseRead(respOf(resp3, "other", []string{"1-1", "ce-id", "1"}), []*stream{st})
		require.NoError(t, err)
		assert.Empty(t, res, "a stream not read is left out")
	}
	for _, nilReply := range []string{"*-1\r\n", "_\r\n"} {
		_, err := parseRead([]byte(nilReply), []*stream{st})
		assert.ErrorIs(t, err, goredis.Nil)
	}
	// A deleted entry (nil fields) is an entry without fields: unreadable.
	res, err := parseRead([]byte("*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*-1\r\n"), []*stream{st})
	require.NoError(t, err)
	require.Len(t, res[0].entries, 1)
	_, err = decodeFields("t", res[0].entries[0].fields, res[0].entries[0].data)
	assert.ErrorIs(t, err, driver.ErrUnreadable)
}

func TestParseReadBadReplies(t *testing.T) {
	st := &stream{typ: "t", key: "k"}
	good := string(respOf(false, "k", []string{"1-1", "ce-id", "1", "data", "x"}))
	for _, tc := range []struct{ reply, want string }{
		{"-NOGROUP No such key 'k' or consumer group 'g'\r\n", "NOGROUP No such key"},
		{"!9\r\nWRONGTYPE\r\n", "WRONGTYPE"},
		{"", "truncated"},
		{good[:len(good)-3], "bulk string"},
		{good[:len(good)-1], "bulk string"},
		{"*1\r\n*3\r\n$1\r\nk\r\n*0\r\n$1\r\nk\r\n", "not a pair"},
		{"*1\r\n*2\r\n*1\r\n$1\r\nk\r\n", "where a string was expected"},
		{"*1\r\n*2\r\n:1\r\n", "type ':'"},
		{"*1\r\n*2\r\n$1\r\nk\r\n$1\r\nx\r\n", "where an array was expected"},
		{"*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$1\r\n1\r\n*1\r\n$1\r\na\r\n", "1 field names and values"},
		{"*x\r\n", "bad length"},
		{"*99999999999\r\n", "bad length"},
		{"+OK\r\n", "type '+'"},
		{"$-5\r\n", "where an array was expected"},
	} {
		_, err := parseRead([]byte(tc.reply), []*stream{st})
		require.Error(t, err, "%q", tc.reply)
		assert.Contains(t, err.Error(), tc.want, "%q", tc.reply)
		if !strings.HasPrefix(tc.reply, "-") && !strings.HasPrefix(tc.reply, "!") {
			assert.True(t, errors.Is(err, errBadReply), "%q: %v", tc.reply, err)
		}
	}
}

// Whatever a read's reply holds, parsing it does not panic; an entry's
// fields parse back as they were written, in order, the data field apart.
func FuzzStreamReply(f *testing.F) {
	f.Add(false, entryBytes("ce-specversion", "1.0", "ce-id", "1", "ce-type", "user.created", "ce-source", "s",
		"ce-time", "2024-05-01T12:30:00.5+02:00", "meta-k", "v\r\n", "traceparent", "x", "data", `{"a":1}`))
	f.Add(true, entryBytes("CE-SpecVersion", "1.0", "Ce-Id", " %41 ", "ce-type", "a.b", "ce-source", "s", "data", "\xff"))
	f.Add(true, []byte("*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*-1\r\n"))
	f.Add(false, []byte("%1\r\n$1\r\nk\r\n*1\r\n*2\r\n$1\r\n1\r\n*2\r\n$4\r\ndata\r\n$1\r\nx\r\n"))
	f.Fuzz(func(t *testing.T, resp3 bool, raw []byte) {
		st := &stream{typ: "user.created", key: "k"}
		_, _ = parseRead(raw, []*stream{st})

		parts := strings.Split(string(raw), "\x00")
		parts = parts[:len(parts)/2*2]
		res, err := parseRead(respOf(resp3, "k", append([]string{"1-1"}, parts...)), []*stream{st})
		if err != nil {
			t.Fatalf("a well-formed reply does not parse: %v", err)
		}
		e := res[0].entries[0]
		var want []string
		var data []byte
		for i := 0; i < len(parts); i += 2 {
			if parts[i] == fieldData {
				data = []byte(parts[i+1]) // the last, as in go-redis's map
			} else {
				want = append(want, parts[i], parts[i+1])
			}
		}
		if e.id != "1-1" || !slices.Equal(e.fields, want) || !bytes.Equal(e.data, data) {
			t.Fatalf("parsed %q %q %q, want %q %q", e.id, e.fields, e.data, want, data)
		}
	})
}

// A listener whose read's reply gossip's parser rejects reads it again
// through go-redis and receives the events, instead of re-reading the
// same reply forever.
func TestListenerReadsThroughGoRedisWhenTheReplyDoesNotParse(t *testing.T) {
	url := os.Getenv("GOSSIP_REDIS_URL")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("GOSSIP_REDIS_URL is not set; CI needs a real Redis")
		}
		t.Skip("GOSSIP_REDIS_URL is not set")
	}
	rejected := make(chan struct{}, 1)
	parseReply = func(b []byte, streams []*stream) ([]readEntries, error) {
		if res, err := parseRead(b, streams); err != nil || len(res) == 0 {
			return res, err // nothing read: nothing to reject
		}
		select {
		case rejected <- struct{}{}:
		default:
		}
		return nil, fmt.Errorf("%w: rejected by the test", errBadReply)
	}
	t.Cleanup(func() { parseReply = parseRead })

	o, err := goredis.ParseURL(url)
	require.NoError(t, err)
	client := goredis.NewClient(o)
	t.Cleanup(func() { _ = client.Close() })
	prefix := fmt.Sprintf("gt_fallback_%x", rand.Uint32())
	dc, err := New(client, Prefix(prefix), Block(20*time.Millisecond), Logger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	c := dc.(*conn)
	ctx := context.Background()
	sent := sampleMessage()
	t.Cleanup(func() {
		_ = client.Del(ctx, c.streamKey(sent.Type), c.typesKey()).Err()
		_ = c.Close(ctx)
	})
	sub, err := c.Subscribe(ctx, driver.SubscribeSpec{Pattern: sent.Type, BufferSize: 10})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close(ctx) })

	require.NoError(t, c.Publish(ctx, []*driver.Message{sent}))
	select {
	case d := <-sub.Deliveries():
		require.NoError(t, d.Err)
		assert.Equal(t, sent.ID, d.ID)
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
	}
	select {
	case <-rejected:
	default:
		t.Fatal("the raw reply was never rejected: the test proves nothing")
	}
}
