package nats_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// hostileRow is a raw message another producer writes on a subject gossip
// uses: either a readable event (handled under wantID) or one that is
// dead-lettered once with a reason holding wantReason.
type hostileRow struct {
	name       string
	token      string // the subject's last token (under "<prefix>.hostile.")
	header     natsgo.Header
	rawHeader  string // written on the wire as it is, past nats.go's checks
	body       []byte
	wantID     string // handled with this ID
	wantType   string // ... and this type (default "hostile.<token>")
	wantReason string // dead-lettered with this in its reason
}

// ceHeader is a valid binary-mode CloudEvent's header with ID id, in the
// lower case gossip writes.
func ceHeader(id string) natsgo.Header {
	return natsgo.Header{"ce-specversion": {"1.0"}, "ce-id": {id}, "ce-type": {"hostile.x"},
		"ce-source": {"other"}, "content-type": {"application/json"}}
}

func with(h natsgo.Header, kv ...string) natsgo.Header {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(h, kv[i])
		} else {
			h[kv[i]] = []string{kv[i+1]}
		}
	}
	return h
}

func hostileRows(maxPayload int) []hostileRow {
	many := ceHeader("many-headers")
	for i := range 3000 {
		many[fmt.Sprintf("X-H-%d", i)] = []string{"v"}
	}
	big := []byte(`{"pad":"` + strings.Repeat("x", maxPayload-4096) + `"}`)
	return []hostileRow{
		{name: "HTTP casing", token: "x", header: natsgo.Header{"Ce-Id": {"http-casing"}, "Ce-Specversion": {"1.0"},
			"Ce-Type": {"hostile.x"}, "Ce-Source": {"other"}, "Content-Type": {"application/json"}},
			body: []byte(`{"n":1}`), wantID: "http-casing"},
		{name: "no CloudEvents attributes", token: "x", header: natsgo.Header{}, body: []byte("hello"),
			wantReason: "no ce-specversion field; no ce-id field"},
		{name: "specversion 0.3", token: "x", header: with(ceHeader("v03"), "ce-specversion", "0.3"), body: []byte(`{}`),
			wantReason: `ce-specversion "0.3" is not "1.0"`},
		{name: "no ce-id", token: "x", header: with(ceHeader(""), "ce-id", ""), body: []byte(`{}`), wantReason: "no ce-id field"},
		{name: "bad ce-time", token: "x", header: with(ceHeader("bad-time"), "ce-time", "yesterday"), body: []byte(`{}`),
			wantReason: `ce-time "yesterday" is not RFC 3339`},
		// nats.go writes CR and LF in a header value as spaces: the value
		// arrives changed, but as a readable event.
		{name: "CR/LF in values", token: "x", header: with(ceHeader("crlf\r\nid"), "X-Meta", "a\r\nb"),
			body: []byte(`{}`), wantID: "crlf  id"},
		{name: "Latin-1 bytes", token: "x", header: with(ceHeader("caf\xe9"), "X-Meta", "caf\xe9"), body: []byte(`{}`),
			wantReason: "not valid UTF-8"},
		// nats.go checks header names and writes CR/LF in values as spaces,
		// so this one is written on the wire by hand; nats.go hands it over
		// without headers.
		{name: "malformed header block", token: "x", rawHeader: "NATS/1.0\r\nce-id: 1\r\nno colon here\r\n\r\n",
			body: []byte(`{}`), wantReason: "no ce-specversion field"},
		{name: "garbage body without a content type", token: "x", header: with(ceHeader("garbage"), "content-type", ""),
			body: []byte("\x00\xff\xfe garbage"), wantReason: "cannot decode"},
		{name: "non-JSON body labelled application/json", token: "x", header: ceHeader("not-json"),
			body: []byte("{not json"), wantReason: "cannot decode"},
		{name: "structured mode that is not JSON", token: "x",
			header: natsgo.Header{"content-type": {"application/cloudevents+json"}}, body: []byte("{"),
			wantReason: "not a JSON object"},
		{name: "body near the server's max payload", token: "x", header: ceHeader("big"), body: big, wantID: "big"},
		{name: "thousands of headers", token: "x", header: many, body: []byte(`{}`), wantID: "many-headers"},
		{name: "type/subject mismatch: the subject wins", token: "mismatch", header: with(ceHeader("mismatch"), "ce-type", "other.type"),
			body: []byte(`{}`), wantID: "mismatch"},
		{name: "subject that names no valid type", token: "a$b", header: ceHeader("dollar"), body: []byte(`{}`),
			wantReason: `names no valid event type`},
	}
}

// Raw messages another producer writes on gossip's subjects, interleaved
// with valid events: every valid event is handled, every bad one is
// dead-lettered once with its reason, nothing panics, and the log stays
// bounded.
func TestHostileInput(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) { testHostileInput(t, mode.param) })
	}
}

func testHostileInput(t *testing.T, modeParam string) {
	p := prefix(t)
	logs := &logLines{}
	bus := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + p + modeParam, Logger: slog.New(logs)})

	var mu sync.Mutex
	handled := map[string][]string{} // ID -> types
	dead := map[string][]string{}    // X-Row -> reasons
	signal := make(chan struct{}, 1)
	note := func(m map[string][]string, k, v string) {
		mu.Lock()
		m[k] = append(m[k], v)
		mu.Unlock()
		select {
		case signal <- struct{}{}:
		default:
		}
	}
	type payload map[string]any
	_, err := bus.Subscribe("hostile.>", gossip.Typed(func(_ context.Context, e *gossip.Event, _ payload) error {
		note(handled, e.ID, string(e.Type))
		return nil
	}), gossip.Group("g"))
	require.NoError(t, err)
	_, err = bus.Subscribe(gossip.DeadLetterType("g", ">"), func(_ context.Context, e *gossip.Event) error {
		row := e.Metadata["X-Row"]
		if row == "" {
			// Its body is kept as it came (application/octet-stream).
			var body struct{ Row string }
			_ = json.Unmarshal(fmt.Appendf(nil, "%s", e.Data), &body)
			row = body.Row
		}
		note(dead, row, e.Metadata[gossip.MetaDeadLetterError])
		return nil
	})
	require.NoError(t, err)

	nc, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	send := func(m *natsgo.Msg) {
		if modeParam == "" {
			_, err := js.PublishMsg(ctx, m)
			require.NoError(t, err, m.Subject)
			return
		}
		require.NoError(t, nc.PublishMsg(m), m.Subject)
		require.NoError(t, nc.FlushWithContext(ctx))
	}

	rows := hostileRows(int(nc.MaxPayload()))
	var valid []string
	bad := 0
	for i, r := range rows {
		if r.rawHeader != "" {
			// No header survives: the row is known by its body.
			r.body = []byte(`{"row":"` + r.name + `"}`)
			rawPublish(t, shared.URL(), p+".hostile."+r.token, r.rawHeader, r.body)
		} else {
			r.header["X-Row"] = []string{r.name}
			send(&natsgo.Msg{Subject: p + ".hostile." + r.token, Header: r.header, Data: r.body})
		}
		if r.wantReason != "" {
			bad++
		}
		ok := gossip.NewEvent("hostile.ok", payload{"i": i})
		require.NoError(t, bus.Publish(ctx, ok))
		valid = append(valid, ok.ID)
	}

	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range valid {
			if len(handled[id]) == 0 {
				return false
			}
		}
		for _, r := range rows {
			if r.wantID != "" && len(handled[r.wantID]) == 0 || r.wantReason != "" && len(dead[r.name]) == 0 {
				return false
			}
		}
		return true
	}
	for !done() {
		select {
		case <-signal:
		case <-ctx.Done():
			mu.Lock()
			require.FailNowf(t, "timed out", "handled %q, dead-lettered %q", keys(handled), dead)
			mu.Unlock()
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	require.NoError(t, bus.Shutdown(sctx)) // nothing more is handled after this

	mu.Lock()
	defer mu.Unlock()
	for _, r := range rows {
		switch {
		case r.wantID != "":
			want := cmpOr(r.wantType, "hostile."+r.token)
			assert.Equal(t, []string{want}, handled[r.wantID], "%s: handled once as %s", r.name, want)
			assert.Empty(t, dead[r.name], "%s: not dead-lettered", r.name)
		case r.wantReason != "":
			if assert.Len(t, dead[r.name], 1, "%s: dead-lettered once", r.name) {
				assert.Contains(t, dead[r.name][0], r.wantReason, r.name)
			}
		}
	}
	for _, id := range valid {
		assert.Len(t, handled[id], 1, "valid event %s handled once", id)
	}
	assert.LessOrEqual(t, logs.count(""), 3*len(rows)+10, "log lines: %q", logs.lines)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// rawPublish writes one HPUB with header block hdr on the wire, past
// nats.go, and waits for the server's PONG: it has the message.
func rawPublish(t *testing.T, serverURL, subject, hdr string, body []byte) {
	t.Helper()
	u, err := url.Parse(serverURL)
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	r := bufio.NewReader(conn)
	info, err := r.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(info, "INFO "), info)
	_, err = fmt.Fprintf(conn, "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\n"+
		"HPUB %s %d %d\r\n%s%s\r\nPING\r\n", subject, len(hdr), len(hdr)+len(body), hdr, body)
	require.NoError(t, err)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		require.False(t, strings.HasPrefix(line, "-ERR"), line)
		if strings.HasPrefix(line, "PONG") {
			return
		}
	}
}
