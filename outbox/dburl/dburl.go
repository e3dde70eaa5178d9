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

	"github.com/gossipbus/gossip/gossip/driver"
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
	// Only a URL's scheme is quoted: a string of another form (a key/value
	// DSN) may hold a password the redactor does not know to find.
	what := ""
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		what = fmt.Sprintf(" (scheme %q)", u.Scheme)
	}
	return nil, "", fmt.Errorf("%w%s: want \"sqlite\", \"sqlite:///path\" or \"postgres://...\"", ErrUnknownDatabase, what)
}

// redact is s with its secrets masked, for messages.
func redact(s string) string { return driver.Redact(s) }

// scrub is err, or, should its text quote a secret of URL s (the password,
// a password= or sslpassword= parameter), an error whose text masks it.
func scrub(err error, s string) error {
	u, perr := url.Parse(s)
	if perr != nil {
		return errors.New("the database refused the connection (its error is not shown: it may quote the unparsable URL)")
	}
	var secrets []string
	if p, ok := u.User.Password(); ok && p != "" {
		secrets = append(secrets, p)
	}
	for k, vs := range u.Query() {
		if strings.Contains(strings.ToLower(k), "password") {
			for _, v := range vs {
				if v != "" {
					secrets = append(secrets, v)
				}
			}
		}
	}
	msg := err.Error()
	for _, p := range secrets {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	if msg != err.Error() {
		return errors.New(msg)
	}
	return err
}
