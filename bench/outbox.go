package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
	"github.com/gossipbus/gossip/outbox/dburl"
)

// The outbox rows: events written to an outbox table in the publisher's
// transaction and relayed to a memory bus, against a direct Publish of the
// same events on that bus (the raw column). Throughput is committed and
// relayed (publish → handled); the latency run's gossip column is the
// relay lag, from the start of the transaction to the handler.

// outboxPostgresURL is the PostgreSQL of the outbox rows.
func outboxPostgresURL() string {
	if u := os.Getenv("GOSSIP_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// outboxSQLitePoll is the poll interval of the SQLite relay and of the
// PostgreSQL relay without NOTIFY.
const outboxSQLitePoll = 5 * time.Millisecond

func outboxScenarios() []*Scenario {
	direct := Impl{Label: "direct Publish (memory)", Open: func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
		return openGossip(ctx, fmt.Sprintf("memory://direct%d", run), sh, false, false, recv)
	}}
	row := func(name, db string, p Params, lat bool) *Scenario {
		return &Scenario{Name: name, Params: p, Latency: lat, NoTargets: true, Impls: [nImpl]Impl{
			direct,
			{Label: "outbox → relay on " + db, Open: openOutbox(db, strings.HasSuffix(name, "(NoNotify)"))},
			{Label: "—", Note: "Watermill's SQL forwarder is not measured"},
		}}
	}
	return []*Scenario{
		row("outbox: SQLite, 1 event per transaction", "sqlite", Params{Events: 5_000}, true),
		row("outbox: SQLite, 100 events per transaction", "sqlite", Params{Events: 100_000, Batch: 100}, false),
		row("outbox: PostgreSQL, 1 event per transaction", "postgres", Params{Events: 5_000}, true),
		row("outbox: PostgreSQL, 1 event per transaction, 16 writers", "postgres", Params{Events: 20_000, Publishers: 16}, false),
		row("outbox: PostgreSQL, 1 event per transaction, 16 writers, polling (NoNotify)", "postgres", Params{Events: 20_000, Publishers: 16}, false),
		row("outbox: PostgreSQL, 100 events per transaction", "postgres", Params{Events: 100_000, Batch: 100}, false),
	}
}

// openOutbox opens a table of the run's own in db ("sqlite": a file in a
// new temporary directory; "postgres"), a relay on a memory bus, and a
// subscriber on another bus of the same broker. noNotify: PostgreSQL
// relays poll every outboxSQLitePoll instead of being woken by NOTIFY.
func openOutbox(db string, noNotify bool) Opener {
	return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
		p := &outboxPipe{}
		var err error
		dsn, poll := outboxPostgresURL(), time.Duration(0)
		if db == "sqlite" {
			if p.dir, err = os.MkdirTemp("", "gossip-bench-outbox-"); err != nil {
				return nil, err
			}
			dsn, poll = "sqlite://"+filepath.Join(p.dir, "bench.db"), outboxSQLitePoll
		}
		if noNotify {
			poll = outboxSQLitePoll
		}
		if p.db, _, err = dburl.Open(ctx, dsn); err != nil {
			p.Close()
			return nil, fmt.Errorf("%w: %v", errNotApplicable, err)
		}
		p.table = fmt.Sprintf("bench_outbox_%d_%d", os.Getpid(), run)
		if p.ob, err = outbox.New(p.db, outbox.Options{Table: p.table, Source: "bench", NoNotify: noNotify}); err == nil {
			err = p.ob.CreateSchema(ctx)
		}
		broker := fmt.Sprintf("memory://outbox%d", run)
		quiet := slog.New(slog.DiscardHandler)
		if err == nil {
			p.relayBus, err = gossip.NewEventBus(&gossip.Config{Driver: broker, Source: "bench", Logger: quiet})
		}
		if err == nil {
			p.subBus, err = gossip.NewEventBus(&gossip.Config{Driver: broker, Source: "bench", Workers: gossipWorkers, Logger: quiet})
		}
		if err == nil {
			_, err = p.subBus.Subscribe(benchType, func(_ context.Context, e *gossip.Event) error {
				d, ok := e.Data.(json.RawMessage)
				if !ok {
					return fmt.Errorf("unexpected payload %T", e.Data)
				}
				recv(d, -1)
				return nil
			})
		}
		var relay *outbox.Relay
		if err == nil {
			relay, err = p.ob.NewRelay(p.relayBus, outbox.RelayOptions{BatchSize: 500, PollInterval: poll, Logger: quiet})
		}
		if err != nil {
			p.Close()
			return nil, err
		}
		rctx, cancel := context.WithCancel(context.Background())
		p.stopRelay = cancel
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			_ = relay.Run(rctx)
		}()
		return p, nil
	}
}

type outboxPipe struct {
	dir, table       string
	db               *sql.DB
	ob               *outbox.Outbox
	relayBus, subBus *gossip.EventBus
	stopRelay        func()
	wg               sync.WaitGroup
}

// Publish writes the batch in one transaction.
func (p *outboxPipe) Publish(ctx context.Context, batch [][]byte) error {
	events := make([]*gossip.Event, len(batch))
	for i, b := range batch {
		events[i] = gossip.NewEvent(benchType, json.RawMessage(b))
	}
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := p.ob.Publish(ctx, tx, events...); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (p *outboxPipe) Close() error {
	var errs []error
	if p.stopRelay != nil {
		p.stopRelay()
		p.wg.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, b := range []*gossip.EventBus{p.relayBus, p.subBus} {
		if b != nil {
			errs = append(errs, b.Shutdown(ctx))
		}
	}
	if p.db != nil {
		if p.ob != nil {
			_, err := p.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+p.table)
			errs = append(errs, err)
			if p.ob.Dialect() == outbox.Postgres {
				_, err = p.db.ExecContext(ctx, "DROP FUNCTION IF EXISTS "+p.table+"_notify()")
				errs = append(errs, err)
			}
		}
		errs = append(errs, p.db.Close())
	}
	if p.dir != "" {
		errs = append(errs, os.RemoveAll(p.dir))
	}
	return errors.Join(errs...)
}
