package outbox

import (
	"context"
	"log/slog"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/jackc/pgx/v5"
)

// listen keeps a PostgreSQL connection LISTENing on the outbox's channel,
// which the table's insert trigger notifies, and signals wake on every
// notification (and once each time it starts listening, for rows that
// committed before). A lost connection is reopened with backoff. It
// returns when ctx ends.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	failures := 0
	for ctx.Err() == nil {
		listening, err := r.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		if listening {
			failures = 0
		}
		failures++
		delay := driver.Backoff{Initial: r.opts.RetryBackoff, Max: r.opts.MaxRetryBackoff}.Delay(failures)
		r.log.LogAttrs(ctx, slog.LevelWarn, "outbox relay lost its LISTEN connection; polling until it is back",
			slog.String("error", err.Error()), slog.Duration("backoff", delay))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// errNotPgx says the database's driver is not pgx's: the relay polls.
type errNotPgx struct{}

func (errNotPgx) Error() string {
	return "the database driver is not pgx's stdlib driver: no LISTEN, polling only"
}

func (r *Relay) listenOnce(ctx context.Context, wake chan<- struct{}) (listening bool, err error) {
	conn, err := r.o.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = conn.Close() }()
	err = conn.Raw(func(dc any) error {
		pc, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return errNotPgx{}
		}
		c := pc.Conn()
		// The connection leaves LISTENing: closed here, the pool drops it.
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = c.Close(cctx)
		}()
		if _, err := c.Exec(ctx, r.o.st.listen); err != nil {
			return err
		}
		listening = true
		signal(wake)
		for {
			if _, err := c.WaitForNotification(ctx); err != nil {
				return err
			}
			signal(wake)
		}
	})
	if _, ok := err.(errNotPgx); ok {
		<-ctx.Done() // nothing to retry
	}
	return listening, err
}
