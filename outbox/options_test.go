package outbox_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
)

// Table names are identifiers, checked, since they go into SQL text.
func TestTableNamesAreChecked(t *testing.T) {
	for _, name := range []string{"x; DROP TABLE users", "1abc", "a-b", `"q"`, "a.b.c", "", "ünï"} {
		_, err := outbox.SchemaSQL(outbox.Postgres, name)
		if name == "" {
			require.Error(t, err)
			continue
		}
		assert.ErrorIs(t, err, outbox.ErrInvalidOption, "table %q", name)
	}
	_, err := outbox.SchemaSQL(outbox.SQLite, "events.outbox")
	assert.ErrorIs(t, err, outbox.ErrInvalidOption, "SQLite has no schemas")
	s, err := outbox.SchemaSQL(outbox.Postgres, "events.outbox")
	require.NoError(t, err)
	assert.Contains(t, s, "CREATE TABLE IF NOT EXISTS events.outbox")
	_, err = outbox.SchemaSQL("mysql", "outbox")
	assert.ErrorIs(t, err, outbox.ErrInvalidOption)
}

// The dialect is told from the driver; an unknown driver needs it said.
func TestDialectDetection(t *testing.T) {
	db := openDB(t, "sqlite://"+t.TempDir()+"/d.db")
	o, err := outbox.New(db, outbox.Options{})
	require.NoError(t, err)
	assert.Equal(t, outbox.SQLite, o.Dialect())
	assert.Equal(t, outbox.DefaultTable, o.Table())
	_, err = outbox.New(nil, outbox.Options{})
	assert.ErrorIs(t, err, outbox.ErrInvalidOption)

	sql.Register("outbox-test-unknown", fakeDriver{})
	other, err := sql.Open("outbox-test-unknown", "")
	require.NoError(t, err)
	defer func() { _ = other.Close() }()
	_, err = outbox.New(other, outbox.Options{})
	assert.ErrorIs(t, err, outbox.ErrInvalidOption)
	o, err = outbox.New(other, outbox.Options{Dialect: outbox.Postgres})
	require.NoError(t, err)
	assert.Equal(t, outbox.Postgres, o.Dialect())
}

// Relay options out of their ranges are refused.
func TestRelayOptionsAreChecked(t *testing.T) {
	o, err := outbox.New(openDB(t, "sqlite://"+t.TempDir()+"/d.db"), outbox.Options{})
	require.NoError(t, err)
	bus := newBus(t, "memory", gossip.Config{})
	for name, opts := range map[string]outbox.RelayOptions{
		"batch":      {BatchSize: -1},
		"big batch":  {BatchSize: 10_001},
		"poll":       {PollInterval: time.Microsecond},
		"lease":      {Lease: time.Second, PublishTimeout: 2 * time.Second},
		"backoff":    {RetryBackoff: time.Second, MaxRetryBackoff: time.Millisecond},
		"retention":  {Retention: -time.Second},
		"purge":      {PurgeBatch: -5},
		"timeout":    {PublishTimeout: time.Millisecond},
		"no backoff": {RetryBackoff: -1},
	} {
		_, err := o.NewRelay(bus, opts)
		assert.ErrorIs(t, err, outbox.ErrInvalidOption, name)
	}
	_, err = o.NewRelay(nil, outbox.RelayOptions{})
	assert.ErrorIs(t, err, outbox.ErrInvalidOption)
	r, err := o.NewRelay(bus, outbox.RelayOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, r.Name())
}
