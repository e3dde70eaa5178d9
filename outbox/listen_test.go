package outbox_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
)

// On PostgreSQL a commit wakes an idle relay through LISTEN/NOTIFY: with
// polling an hour apart, rows still go out at once.
func TestPostgresNotifyWakesTheRelay(t *testing.T) {
	requirePostgres(t)
	db := openDB(t, postgresURL())
	o := newOutbox(t, db)
	url := "memory://" + randomName("notify")
	c := newConsumer()
	_, err := newBus(t, url, gossip.Config{}).Subscribe("n.>", c.handle)
	require.NoError(t, err)
	runRelay(t, newRelay(t, o, newBus(t, url, gossip.Config{}), outbox.RelayOptions{PollInterval: time.Hour}))
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE query = $1`, `LISTEN "`+o.Table()+`"`).Scan(&n))
		return n == 1
	}, waitLimit, 10*time.Millisecond, "the relay is not listening")
	// The first row may ride the wake-up the relay gives itself when it
	// starts listening; the second can only come through a NOTIFY.
	for i := range 2 {
		e := gossip.NewEvent("n.x", i)
		write(t, o, true, e)
		c.waitFor(t, e.ID)
	}
}

// With NoNotify the table has no trigger (CreateSchema drops one made
// before), and relays find rows by polling.
func TestPostgresNoNotifyDropsTheTriggerAndPolls(t *testing.T) {
	requirePostgres(t)
	db := openDB(t, postgresURL())
	o := newOutbox(t, db) // with the trigger
	triggers := func() int {
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, o.Table()).Scan(&n))
		return n
	}
	require.Equal(t, 1, triggers())
	polling, err := outbox.New(db, outbox.Options{Table: o.Table(), NoNotify: true})
	require.NoError(t, err)
	require.NoError(t, polling.CreateSchema(t.Context()))
	require.Zero(t, triggers(), "NoNotify drops the trigger")

	url := "memory://" + randomName("poll")
	c := newConsumer()
	_, err = newBus(t, url, gossip.Config{}).Subscribe("p.>", c.handle)
	require.NoError(t, err)
	runRelay(t, newRelay(t, polling, newBus(t, url, gossip.Config{}), outbox.RelayOptions{PollInterval: 20 * time.Millisecond}))
	e := gossip.NewEvent("p.x", 1)
	write(t, polling, true, e)
	c.waitFor(t, e.ID)
}
