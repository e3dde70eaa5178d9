package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
	"github.com/gossipbus/gossip/outbox/dburl"
)

// userStore is UserService's database with -outbox: the users table and
// the outbox its events go through, written in one transaction.
type userStore struct {
	db      *sql.DB
	ob      *outbox.Outbox
	dialect outbox.Dialect
}

const (
	usersTable  = "microservices_users"
	outboxTable = "microservices_outbox"
)

// openUserStore opens the database dsn names ("sqlite", "sqlite:///path",
// "postgres://...") and creates the tables where they are missing.
func openUserStore(ctx context.Context, dsn string) (*userStore, error) {
	db, dialect, err := dburl.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	ob, err := outbox.New(db, outbox.Options{Dialect: dialect, Table: outboxTable, Source: "user_service"})
	if err == nil {
		err = ob.CreateSchema(ctx)
	}
	if err == nil {
		_, err = db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+usersTable+` (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, fields TEXT)`)
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &userStore{db: db, ob: ob, dialect: dialect}, nil
}

// sql rewrites '?' placeholders as PostgreSQL's $1, $2, ...
func (s *userStore) sql(q string) string {
	if s.dialect != outbox.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// write runs the row's statement and stores e in the outbox, in one
// transaction: both commit, or neither.
func (s *userStore) write(ctx context.Context, e *gossip.Event, query string, args ...any) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, s.sql(query), args...); err != nil {
		return err
	}
	if err := s.ob.Publish(ctx, tx, e); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *userStore) createUser(ctx context.Context, e *gossip.Event, u UserCreatedEvent) error {
	return s.write(ctx, e, `INSERT INTO `+usersTable+` (id, name, email) VALUES (?, ?, ?)`, u.UserID, u.Name, u.Email)
}

func (s *userStore) updateUser(ctx context.Context, e *gossip.Event, u UserUpdatedEvent) error {
	fields, err := json.Marshal(u.Fields)
	if err != nil {
		return err
	}
	return s.write(ctx, e, `UPDATE `+usersTable+` SET fields = ? WHERE id = ?`, string(fields), u.UserID)
}

// startRelay runs the outbox's relay on bus until the returned func is
// called; that func waits until it stopped.
func (s *userStore) startRelay(bus *gossip.EventBus, logger *slog.Logger) (stop func(), err error) {
	r, err := s.ob.NewRelay(bus, outbox.RelayOptions{Logger: logger, PollInterval: 100 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			logger.Error("outbox relay", "error", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// waitSent waits until the relay has sent every row: a user_service process
// of its own exits only then.
func (s *userStore) waitSent(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := s.ob.Pending(ctx)
		if err != nil || n == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d outbox rows not sent: %w", n, ctx.Err())
		case <-tick.C:
		}
	}
}

func (s *userStore) close() error { return errors.Join(s.db.Close()) }
