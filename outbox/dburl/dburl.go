// Package dburl opens the database an outbox lives in from one string, as
// gossip.Config.Driver opens a transport: "sqlite" (a file in the user's
// cache directory), "sqlite:///path/to/file.db", or a PostgreSQL URL
// ("postgres://user@host:5432/db?sslmode=disable"). It links both drivers:
// modernc.org/sqlite (pure Go) and pgx's database/sql driver.
package dburl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"

	"github.com/gossipbus/gossip/outbox"
)

// ErrUnknownDatabase is wrapped by the error Open returns for a string that
// names no database it knows.
var ErrUnknownDatabase = errors.New("gossip: outbox: unknown database")

// SQLitePragmas are the settings Open gives every SQLite connection: WAL
// (readers never wait for the writer), a 10 s busy timeout (a writer waits
// for the other instead of failing) and transactions that take the write
// lock when they begin, so two writers never deadlock upgrading a read.
const SQLitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// DefaultSQLitePath is where "sqlite" keeps its file: gossip/outbox.db in
// the user's cache directory (the temporary directory when there is none).
func DefaultSQLitePath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "gossip", "outbox.db")
}

// Open opens and pings the database s names and returns it with its
// dialect. Errors never hold the URL's password.
func Open(ctx context.Context, s string) (*sql.DB, outbox.Dialect, error) {
	switch {
	case s == "sqlite" || strings.HasPrefix(s, "sqlite://"):
		path := strings.TrimPrefix(strings.TrimPrefix(s, "sqlite"), "://")
		if path == "" {
			path = DefaultSQLitePath()
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, "", fmt.Errorf("gossip: outbox: sqlite directory: %w", err)
		}
		db, err := sql.Open("sqlite", path+"?"+SQLitePragmas)
		if err != nil {
			return nil, "", fmt.Errorf("gossip: outbox: open sqlite %s: %w", path, err)
		}
		if err := db.PingContext(ctx); err != nil {
			_ = db.Close()
			return nil, "", fmt.Errorf("gossip: outbox: open sqlite %s: %w", path, err)
		}
		return db, outbox.SQLite, nil
	case strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://"):
		where := redact(s)
		db, err := sql.Open("pgx", s)
		if err != nil {
			return nil, "", fmt.Errorf("gossip: outbox: open %s: %w", where, scrub(err, s))
		}
		if err := db.PingContext(ctx); err != nil {
			_ = db.Close()
			return nil, "", fmt.Errorf("gossip: outbox: open %s: %w", where, scrub(err, s))
		}
		return db, outbox.Postgres, nil
	}
	return nil, "", fmt.Errorf("%w %q: want \"sqlite\", \"sqlite:///path\" or \"postgres://...\"", ErrUnknownDatabase, redact(s))
}

// redact is s with any password replaced, for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// scrub is err, or its text with the URL's password taken out should the
// driver have quoted it.
func scrub(err error, s string) error {
	if u, perr := url.Parse(s); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" && strings.Contains(err.Error(), p) {
			return errors.New(strings.ReplaceAll(err.Error(), p, "xxxxx"))
		}
	}
	return err
}
