package nats_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/drivertest"

	_ "github.com/gossipbus/gossip/drivers/nats"
)

func TestConformanceJetStream(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Config: func(t testing.TB, ns string) gossip.Config {
			url := shared.URL()
			if strings.HasSuffix(t.Name(), "/ShutdownLeaksNoGoroutine") {
				url = startChildServer(t) // see startChildServer
			}
			return gossip.Config{Driver: url + "?prefix=" + ns}
		},
		Capabilities: drivertest.Capabilities{Groups: true, Durable: true, Encodes: true},
		PutRaw:       putRaw(shared.URL(), func(ns string) string { return ns }, true),
	})
}

func TestConformanceCore(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Config: func(t testing.TB, ns string) gossip.Config {
			return gossip.Config{Driver: shared.URL() + "?mode=core&prefix=core_" + ns}
		},
		// The shared in-process server may still be starting goroutines
		// for consumers of earlier JetStream tests; core mode makes none.
		IgnoreGoroutines: []goleak.Option{
			goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*consumer).setLeader.func2"),
			goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*consumer).setLeader.func3"),
			goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*consumer).setLeader.func4"),
			goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*consumerFileStore).flushLoop"),
		},
		// Publish returns once nats.go has the events (flush=async).
		Capabilities: drivertest.Capabilities{Groups: true, Encodes: true, QueuedPublish: true},
		PutRaw:       putRaw(shared.URL(), func(ns string) string { return "core_" + ns }, false),
	})
}

// putRaw returns a Harness.PutRaw publishing body, with no headers, with
// plain nats.go on the subject of the type ("<prefix>.<type>", the prefix
// of namespace ns given by prefixOf): through JetStream, waiting for the
// stream's PubAck, or core NATS, flushed.
func putRaw(url string, prefixOf func(ns string) string, jetStream bool) func(t testing.TB, ns, typ string, body []byte) {
	return func(t testing.TB, ns, typ string, body []byte) {
		t.Helper()
		nc, err := natsgo.Connect(url)
		require.NoError(t, err)
		defer nc.Close()
		subject := prefixOf(ns) + "." + typ
		if !jetStream {
			require.NoError(t, nc.Publish(subject, body))
			require.NoError(t, nc.Flush())
			return
		}
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = js.Publish(ctx, subject, body)
		require.NoError(t, err, "publish raw bytes on %s", subject)
	}
}

// TestConformanceExternalServer runs the suite once more against the NATS
// server GOSSIP_NATS_URL names (CI sets nats://127.0.0.1:4222), in a stream
// prefix of its own, and deletes the streams it made.
func TestConformanceExternalServer(t *testing.T) {
	url := os.Getenv("GOSSIP_NATS_URL")
	if url == "" {
		t.Skip("GOSSIP_NATS_URL is not set")
	}
	run := "ext" + strings.ReplaceAll(time.Now().UTC().Format("150405.000000"), ".", "")
	t.Cleanup(func() { deleteStreams(t, url, run) })
	drivertest.Run(t, drivertest.Harness{
		Config: func(t testing.TB, ns string) gossip.Config {
			return gossip.Config{Driver: url + "?prefix=" + run + "_" + ns}
		},
		Capabilities: drivertest.Capabilities{Groups: true, Durable: true, Encodes: true},
		PutRaw:       putRaw(url, func(ns string) string { return run + "_" + ns }, true),
	})
}

// deleteStreams deletes the streams whose names start with prefix.
func deleteStreams(t *testing.T, url, prefix string) {
	nc, err := natsgo.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var doomed []string
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix) || strings.HasPrefix(n, "KV_"+prefix) { // KV_: claim stores
			doomed = append(doomed, n)
		}
	}
	for _, n := range doomed {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Logf("delete stream %s: %v", n, err)
		}
	}
}
