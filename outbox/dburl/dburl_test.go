package dburl_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/outbox"
	"github.com/gossipbus/gossip/outbox/dburl"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A SQLite path opens a file there, in WAL mode with a busy timeout.
func TestOpenSQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.db")
	db, d, err := dburl.Open(t.Context(), "sqlite://"+path)
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	assert.Equal(t, outbox.SQLite, d)
	var mode string
	var timeout int
	require.NoError(t, db.QueryRow("PRAGMA journal_mode").Scan(&mode))
	require.NoError(t, db.QueryRow("PRAGMA busy_timeout").Scan(&timeout))
	assert.Equal(t, "wal", mode)
	assert.Equal(t, 10000, timeout)
	assert.FileExists(t, path)
}

// Anything else is an error naming what is accepted.
func TestOpenUnknown(t *testing.T) {
	for _, dsn := range []string{"mysql://u:TOPSECRET@h/db", "host=127.0.0.1 user=u password=TOPSECRET dbname=db"} {
		_, _, err := dburl.Open(t.Context(), dsn)
		require.ErrorIs(t, err, dburl.ErrUnknownDatabase)
		assert.NotContains(t, err.Error(), "TOPSECRET", dsn)
		assert.Contains(t, err.Error(), "postgres://")
	}
}

// An unreachable PostgreSQL is an error within the ctx's time, naming the
// address and not the password.
func TestOpenUnreachablePostgresHidesThePassword(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://user:TOPSECRET@" + addr + "/db?sslmode=disable",
		"postgres://user@" + addr + "/db?sslmode=disable&password=TOPSECRET",
	} {
		_, _, err = dburl.Open(ctx, dsn)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "TOPSECRET")
		assert.Contains(t, err.Error(), addr)
	}
}
