package redis_test

import (
	"context"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/internal/testtls"
)

// ownServer starts a redis-server of the test's own on a free port, with
// extra arguments, and stops it when the test ends.
func ownServer(t *testing.T, extra ...string) *server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("no redis-server on PATH")
	}
	srv, err := launch(t.TempDir(), freePort(nil), extra...)
	require.NoError(t, err)
	t.Cleanup(srv.kill)
	return srv
}

// roundTrip opens a bus on rawURL and sees one event through it.
func roundTrip(t *testing.T, rawURL string) {
	t.Helper()
	bus := newBus(t, rawURL, newNS(t))
	got := make(chan *gossip.Event, 1)
	_, err := bus.Subscribe("secure.ping", func(ctx context.Context, e *gossip.Event) error {
		got <- e
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, bus.Publish(context.Background(), gossip.NewEvent("secure.ping", 1)))
	collect(t, got, 1, 10*time.Second, "the event")
}

// openErr opens a bus on rawURL, which must fail, and returns the error.
func openErr(t *testing.T, rawURL string) error {
	t.Helper()
	_, err := gossip.NewEventBus(&gossip.Config{Driver: rawURL, DialTimeout: 5 * time.Second, Logger: discard})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "TOPSECRET", "the error shows the password")
	assert.NotContains(t, err.Error(), "\n")
	t.Logf("error: %v", err)
	return err
}

// A Redis ACL user with a password full of URL delimiters: percent-encoded
// it connects; unencoded, or wrong, the error is clear and never shows it.
func TestACLUser(t *testing.T) {
	srv := ownServer(t)
	const password = "TOPSECRET/pw#1?%x@y"
	addr := "127.0.0.1:" + strconv.Itoa(srv.port)
	admin := newClient(t, "redis://"+addr+"/0")
	ctx := context.Background()
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "app", "on", ">"+password, "~*", "&*", "+@all").Err())
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "default", "off").Err())

	good := (&url.URL{Scheme: "redis", User: url.UserPassword("app", password), Host: addr, Path: "/0"}).String()
	require.Contains(t, good, "%2F", "percent-encoded")
	t.Run("encoded", func(t *testing.T) { roundTrip(t, good) })
	t.Run("pubsub", func(t *testing.T) { roundTrip(t, withParams(good, "mode", "pubsub")) })
	t.Run("unencoded", func(t *testing.T) {
		err := openErr(t, "redis://app:"+password+"@"+addr+"/0")
		assert.Contains(t, err.Error(), "percent-encoded")
	})
	t.Run("wrong password", func(t *testing.T) {
		wrong := (&url.URL{Scheme: "redis", User: url.UserPassword("app", "TOPSECRET-wrong"), Host: addr, Path: "/0"}).String()
		err := openErr(t, wrong)
		assert.Contains(t, err.Error(), addr)
		assert.Contains(t, err.Error(), "WRONGPASS")
	})
	t.Run("no user", func(t *testing.T) {
		err := openErr(t, "redis://"+addr+"/0")
		assert.Contains(t, err.Error(), addr)
	})
}

// rediss:// with a private CA and a client certificate named in the URL,
// against a redis-server that requires client certificates.
func TestTLSWithClientCertificate(t *testing.T) {
	m := testtls.New(t)
	tlsPort := freePort(nil)
	srv, err := launch(t.TempDir(), freePort(nil), "--tls-port", strconv.Itoa(tlsPort),
		"--tls-cert-file", m.ServerCertFile, "--tls-key-file", m.ServerKeyFile,
		"--tls-ca-cert-file", m.CAFile, "--tls-auth-clients", "yes")
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "tls") {
		t.Skipf("this redis-server has no TLS: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(srv.kill)
	addr := "127.0.0.1:" + strconv.Itoa(tlsPort)
	base := "rediss://" + addr + "/0"

	t.Run("CA and client certificate", func(t *testing.T) {
		roundTrip(t, withParams(base, "tls_ca", m.CAFile, "tls_cert", m.ClientCertFile, "tls_key", m.ClientKeyFile))
	})
	t.Run("no client certificate", func(t *testing.T) {
		err := openErr(t, withParams(base, "tls_ca", m.CAFile))
		assert.Contains(t, err.Error(), addr)
	})
	t.Run("unknown CA", func(t *testing.T) {
		err := openErr(t, withParams(base, "tls_cert", m.ClientCertFile, "tls_key", m.ClientKeyFile))
		assert.Contains(t, err.Error(), "certificate")
	})
	t.Run("key without certificate", func(t *testing.T) {
		err := openErr(t, withParams(base, "tls_ca", m.CAFile, "tls_key", m.ClientKeyFile))
		assert.Contains(t, err.Error(), "tls_cert and tls_key go together")
	})
	t.Run("not rediss", func(t *testing.T) {
		err := openErr(t, withParams("redis://"+addr+"/0", "tls_ca", m.CAFile))
		assert.Contains(t, err.Error(), "need a rediss:// URL")
	})
}
