package nats_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/drivers/nats/natsserver"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/internal/testtls"
)

// securedServer starts an embedded JetStream server configured by
// configure, shut down when the test ends.
func securedServer(t *testing.T, configure func(*server.Options)) *natsserver.Server {
	t.Helper()
	srv, err := natsserver.Start(natsserver.Options{Configure: configure})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	return srv
}

// roundTrip opens a bus on dsn and sees one event through it.
func roundTrip(t *testing.T, dsn string) {
	t.Helper()
	bus := newBus(t, gossip.Config{Driver: dsn, DialTimeout: 5 * time.Second})
	l := newLedger()
	_, err := bus.Subscribe("secure.ping", l.handler, gossip.Group("g"))
	require.NoError(t, err)
	e := gossip.NewEvent("secure.ping", 1)
	require.NoError(t, bus.Publish(context.Background(), e))
	l.waitFor(t, []string{e.ID}, 10*time.Second)
}

// refused opens a bus on dsn, which the server must refuse, and checks the
// error names the server and holds none of secrets.
func refused(t *testing.T, dsn string, secrets ...string) {
	t.Helper()
	_, err := gossip.NewEventBus(&gossip.Config{Driver: dsn, DialTimeout: 5 * time.Second, Logger: quiet})
	require.Error(t, err)
	t.Logf("refused: %v", err)
	assert.Contains(t, err.Error(), "127.0.0.1")
	for _, s := range append(secrets, "TOPSECRET", "SUA", "PRIVATE KEY") {
		assert.NotContains(t, err.Error(), s)
	}
}

func hostPort(srv *natsserver.Server) string { return "127.0.0.1:" + strconv.Itoa(srv.Port()) }

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func TestUserPasswordInTheURL(t *testing.T) {
	const password = "TOPSECRET/pw#1?%@x"
	srv := securedServer(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "alice", Password: password}}
	})
	u := url.URL{Scheme: "nats", User: url.UserPassword("alice", password), Host: hostPort(srv)}
	roundTrip(t, u.String()+"?prefix="+prefix(t))
	u.User = url.UserPassword("alice", "TOPSECRET-wrong")
	refused(t, u.String(), password, url.QueryEscape(password))
}

func TestTokenInTheURL(t *testing.T) {
	const token = "TOPSECRET-token"
	srv := securedServer(t, func(o *server.Options) { o.Authorization = token })
	roundTrip(t, "nats://"+token+"@"+hostPort(srv)+"?prefix="+prefix(t))
	refused(t, "nats://TOPSECRET-other@"+hostPort(srv))
}

func TestNKeySeedFile(t *testing.T) {
	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := user.PublicKey()
	require.NoError(t, err)
	seed, err := user.Seed()
	require.NoError(t, err)
	srv := securedServer(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	roundTrip(t, "nats://"+hostPort(srv)+"?nkey="+url.QueryEscape(writeFile(t, "user.nk", seed))+"&prefix="+prefix(t))

	other, err := nkeys.CreateUser()
	require.NoError(t, err)
	otherSeed, err := other.Seed()
	require.NoError(t, err)
	refused(t, "nats://"+hostPort(srv)+"?nkey="+url.QueryEscape(writeFile(t, "other.nk", otherSeed)), string(otherSeed))
}

// A creds file (a user JWT and its seed) against a server in operator
// mode, all made at test time.
func TestCredsFile(t *testing.T) {
	operator, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opPub, err := operator.PublicKey()
	require.NoError(t, err)
	opClaims := jwt.NewOperatorClaims(opPub)
	opJWT, err := opClaims.Encode(operator)
	require.NoError(t, err)
	opClaims, err = jwt.DecodeOperatorClaims(opJWT)
	require.NoError(t, err)

	account, err := nkeys.CreateAccount()
	require.NoError(t, err)
	accPub, err := account.PublicKey()
	require.NoError(t, err)
	accClaims := jwt.NewAccountClaims(accPub)
	accClaims.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	accJWT, err := accClaims.Encode(operator)
	require.NoError(t, err)

	creds := func(signer nkeys.KeyPair) []byte {
		user, err := nkeys.CreateUser()
		require.NoError(t, err)
		userPub, err := user.PublicKey()
		require.NoError(t, err)
		userJWT, err := jwt.NewUserClaims(userPub).Encode(signer)
		require.NoError(t, err)
		seed, err := user.Seed()
		require.NoError(t, err)
		b, err := jwt.FormatUserConfig(userJWT, seed)
		require.NoError(t, err)
		return b
	}
	system, err := nkeys.CreateAccount()
	require.NoError(t, err)
	sysPub, err := system.PublicKey()
	require.NoError(t, err)
	sysJWT, err := jwt.NewAccountClaims(sysPub).Encode(operator)
	require.NoError(t, err)
	srv := securedServer(t, func(o *server.Options) {
		resolver := &server.MemAccResolver{}
		require.NoError(t, resolver.Store(accPub, accJWT))
		require.NoError(t, resolver.Store(sysPub, sysJWT))
		o.SystemAccount = sysPub
		o.TrustedOperators = []*jwt.OperatorClaims{opClaims}
		o.AccountResolver = resolver
	})
	roundTrip(t, "nats://"+hostPort(srv)+"?creds="+url.QueryEscape(writeFile(t, "user.creds", creds(account)))+"&prefix="+prefix(t))

	// A user signed by an account the server does not know.
	stranger, err := nkeys.CreateAccount()
	require.NoError(t, err)
	bad := creds(stranger)
	refused(t, "nats://"+hostPort(srv)+"?creds="+url.QueryEscape(writeFile(t, "stranger.creds", bad)), string(bad[strings.Index(string(bad), "SU"):][:20]))
}

// Mutual TLS with a private CA, configured from the URL alone.
func TestMutualTLSFromTheURL(t *testing.T) {
	m := testtls.New(t)
	srv := securedServer(t, func(o *server.Options) {
		o.TLSConfig, o.TLS, o.TLSVerify = m.ServerConfig(true), true, true
		o.TLSTimeout = 2
	})
	q := url.Values{"tls_ca": {m.CAFile}, "tls_cert": {m.ClientCertFile}, "tls_key": {m.ClientKeyFile}, "prefix": {prefix(t)}}
	roundTrip(t, "nats://"+hostPort(srv)+"?"+q.Encode())
	// Without a client certificate the server refuses the handshake.
	refused(t, "nats://"+hostPort(srv)+"?tls_ca="+url.QueryEscape(m.CAFile))
	// Without the CA the client does not trust the server.
	refused(t, "nats://"+hostPort(srv)+"?tls_cert="+url.QueryEscape(m.ClientCertFile)+"&tls_key="+url.QueryEscape(m.ClientKeyFile))
}
