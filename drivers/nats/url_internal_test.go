package nats

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	cfg := defaultConfig()
	servers, err := parseURL("nats://u:TOPSECRET@a:4222,b:4222?mode=core&prefix=acme.orders&replicas=3&max_age=1h&name=svc", &cfg)
	require.NoError(t, err)
	assert.Equal(t, "nats://u:TOPSECRET@a:4222,b:4222", servers)
	assert.Equal(t, "svc", cfg.name)
	assert.Equal(t, ModeCore, cfg.mode)
	assert.Equal(t, 3, cfg.replicas)
	assert.Equal(t, time.Hour, cfg.maxAge)
	require.NoError(t, cfg.validate())
	assert.Equal(t, "acme_orders", cfg.stream)
	assert.False(t, cfg.syncAck, "acks are async by default")
	assert.False(t, cfg.syncFlush, "core publishes do not flush by default")
	assert.Equal(t, DefaultPendingMsgs, cfg.pendingMsgs)

	cfg = defaultConfig()
	_, err = parseURL("nats://a:4222?ack=sync&flush=sync&pending_msgs=9&storage=MEMORY&create_stream=false&max_bytes=5&max_msgs=6&max_ack_pending=7&stream_prefix=x&stream=s&duplicates=1m&inactive_threshold=2m&tls_ca=ca.pem", &cfg)
	require.NoError(t, err)
	assert.True(t, cfg.syncAck)
	assert.True(t, cfg.syncFlush)
	assert.Equal(t, 9, cfg.pendingMsgs)
	assert.Equal(t, jetstream.MemoryStorage, cfg.storage)
	assert.False(t, cfg.createStreams)
	assert.Equal(t, int64(5), cfg.maxBytes)
	assert.Equal(t, int64(6), cfg.maxMsgs)
	assert.Equal(t, 7, cfg.maxAckPending)
	assert.Equal(t, "x", cfg.prefix)
	assert.Equal(t, "s", cfg.stream)
	assert.Equal(t, time.Minute, cfg.duplicates)
	assert.Equal(t, 2*time.Minute, cfg.inactiveThreshold)
	assert.Len(t, cfg.natsOptions, 1, "tls_ca adds a nats.Option")

	for _, bad := range []string{"nats://a:4222?mode=fast", "nats://a:4222?flush=later", "nats://a:4222?ack=never", "nats://a:4222?replicas=x", "nats://a:4222?storage=tape", "nats://a:4222?max_age=soon", "nats://a:4222?colour=red"} {
		cfg := defaultConfig()
		_, err := parseURL(bad, &cfg)
		assert.ErrorIs(t, err, ErrBadURL, bad)
	}
	cfg = defaultConfig()
	_, err = parseURL("nats://u:TOPSECRET@a:4222?colour=red", &cfg)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "TOPSECRET")
}

// A server URL that does not parse is an error that quotes none of its
// password, however the password is written.
func TestUnparsableURLHidesThePassword(t *testing.T) {
	for _, dsn := range []string{"nats://u:TOPSECRET/et@a:4222", "nats://u:TOPSECRET%zzet@a:4222", "nats://a:4222,u:TOPSECRET#et@b:4222", "nats://u:TOPSECRET et@a:4222",
		"nats://u:TOPSECRET%2Fet,x@a:4222", "nats://a:4222,u:TOPSECRET,et@b:4222"} {
		cfg := defaultConfig()
		_, err := parseURL(dsn, &cfg)
		require.ErrorIs(t, err, ErrBadURL, dsn)
		assert.NotContains(t, err.Error(), "TOPSECRET", dsn)
	}
}
