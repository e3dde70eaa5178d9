package outbox

import (
	"fmt"
	"regexp"
	"strings"
)

// Dialect is the SQL dialect of the outbox's database.
type Dialect string

// The dialects the outbox speaks.
const (
	// Postgres is PostgreSQL (12 or later), through pgx's database/sql
	// driver (github.com/jackc/pgx/v5/stdlib, registered as "pgx").
	Postgres Dialect = "postgres"
	// SQLite is SQLite (3.35 or later), through modernc.org/sqlite
	// (registered as "sqlite"), pure Go.
	SQLite Dialect = "sqlite"
)

// DefaultTable is the outbox table's name when Options.Table is empty.
const DefaultTable = "gossip_outbox"

// tableName is an identifier, optionally schema-qualified on PostgreSQL:
// letters, digits and '_', not starting with a digit, at most 63 bytes each.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$`)

func checkTable(d Dialect, t string) error {
	if !tableName.MatchString(t) || (d == SQLite && strings.Contains(t, ".")) {
		return fmt.Errorf("%w: table name %q: want letters, digits and '_', not starting with a digit, at most 63 of them (schema.table on PostgreSQL)", ErrInvalidOption, t)
	}
	return nil
}

// statements are one dialect's SQL for one table.
type statements struct {
	schema  []string
	insert  string // one row's VALUES tuple follows insertHead
	claim   string
	sent    string // mark rows sent (Retention > 0)
	deleted string // delete rows once sent (Retention == 0)
	dead    string
	release string
	purge   string
	lag     string
	lockSQL string // serializes claims (PostgreSQL)
	listen  string
	channel string
}

// The columns, in the order the claim returns them.
const rowColumns = "seq, event_id, event_type, source, event_time, content_type, data, metadata"

func postgresStatements(table string) statements {
	name := strings.ReplaceAll(table, ".", "_")
	live := "sent_at IS NULL AND dead_at IS NULL"
	return statements{
		schema: []string{
			`CREATE TABLE IF NOT EXISTS ` + table + ` (
	seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_id     TEXT NOT NULL,
	event_type   TEXT NOT NULL,
	source       TEXT NOT NULL,
	event_time   TEXT NOT NULL,
	content_type TEXT NOT NULL,
	data         BYTEA,
	metadata     TEXT NOT NULL,
	ordering_key TEXT NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
	attempts     INTEGER NOT NULL DEFAULT 0,
	claimed_by   TEXT,
	lease_until  TIMESTAMPTZ,
	sent_at      TIMESTAMPTZ,
	dead_at      TIMESTAMPTZ,
	dead_reason  TEXT
)`,
			`CREATE INDEX IF NOT EXISTS ` + name + `_pending ON ` + table + ` (seq) WHERE ` + live,
			`CREATE INDEX IF NOT EXISTS ` + name + `_claimed ON ` + table + ` (ordering_key, seq) WHERE claimed_by IS NOT NULL AND ` + live,
			`CREATE INDEX IF NOT EXISTS ` + name + `_sent ON ` + table + ` (sent_at) WHERE sent_at IS NOT NULL`,
			`CREATE OR REPLACE FUNCTION ` + table + `_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('` + table + `', '');
	RETURN NULL;
END $$`,
			`CREATE OR REPLACE TRIGGER ` + name + `_notify AFTER INSERT ON ` + table +
				` FOR EACH STATEMENT EXECUTE FUNCTION ` + table + `_notify()`,
		},
		insert: `INSERT INTO ` + table + ` (event_id, event_type, source, event_time, content_type, data, metadata, ordering_key) VALUES `,
		// A row is claimable when it is pending, nobody else holds a live
		// lease on it, and no older pending row of its key is leased by
		// another relay (blocked: the oldest such row per key): a key's
		// rows go to one relay at a time, in order.
		claim: `UPDATE ` + table + ` SET claimed_by = $1, lease_until = clock_timestamp() + $2 * interval '1 microsecond', attempts = attempts + 1
WHERE seq IN (
	WITH blocked AS (
		SELECT ordering_key, min(seq) AS from_seq FROM ` + table + `
		WHERE claimed_by IS NOT NULL AND ` + live + ` AND claimed_by <> $1 AND lease_until >= clock_timestamp()
		GROUP BY ordering_key)
	SELECT r.seq FROM ` + table + ` r LEFT JOIN blocked b ON b.ordering_key = r.ordering_key
	WHERE r.sent_at IS NULL AND r.dead_at IS NULL AND (b.from_seq IS NULL OR r.seq < b.from_seq)
	AND (r.lease_until IS NULL OR r.lease_until < clock_timestamp() OR r.claimed_by = $1)
	ORDER BY r.seq LIMIT $3 FOR UPDATE OF r SKIP LOCKED)
RETURNING ` + rowColumns + `, (extract(epoch FROM clock_timestamp() - created_at) * 1000000)::bigint`,
		sent:    `UPDATE ` + table + ` SET sent_at = clock_timestamp(), claimed_by = NULL, lease_until = NULL WHERE seq = ANY($1)`,
		deleted: `DELETE FROM ` + table + ` WHERE seq = ANY($1)`,
		dead:    `UPDATE ` + table + ` SET dead_at = clock_timestamp(), dead_reason = $2, claimed_by = NULL, lease_until = NULL WHERE seq = $1`,
		release: `UPDATE ` + table + ` SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = $1 AND sent_at IS NULL`,
		purge: `DELETE FROM ` + table + ` WHERE seq IN (SELECT seq FROM ` + table +
			` WHERE sent_at < clock_timestamp() - $1 * interval '1 microsecond' ORDER BY sent_at LIMIT $2)`,
		// The oldest pending row by seq, through the _pending index (min
		// over created_at would read every pending row).
		lag:     `SELECT COALESCE((SELECT (extract(epoch FROM clock_timestamp() - created_at) * 1000000)::bigint FROM ` + table + ` WHERE ` + live + ` ORDER BY seq LIMIT 1), 0)`,
		lockSQL: `SELECT pg_advisory_xact_lock(hashtext('gossip.outbox.` + table + `'))`,
		listen:  `LISTEN "` + table + `"`,
		channel: table,
	}
}

// SQLite has one writer at a time: a claim is one statement, serialized
// by the database itself. Times are Unix microseconds from the relay's
// clock, passed in.
func sqliteStatements(table string) statements {
	live := "sent_at IS NULL AND dead_at IS NULL"
	return statements{
		schema: []string{
			`CREATE TABLE IF NOT EXISTS ` + table + ` (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id     TEXT NOT NULL,
	event_type   TEXT NOT NULL,
	source       TEXT NOT NULL,
	event_time   TEXT NOT NULL,
	content_type TEXT NOT NULL,
	data         BLOB,
	metadata     TEXT NOT NULL,
	ordering_key TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	claimed_by   TEXT,
	lease_until  INTEGER,
	sent_at      INTEGER,
	dead_at      INTEGER,
	dead_reason  TEXT
)`,
			`CREATE INDEX IF NOT EXISTS ` + table + `_pending ON ` + table + ` (seq) WHERE ` + live,
			`CREATE INDEX IF NOT EXISTS ` + table + `_claimed ON ` + table + ` (ordering_key, seq) WHERE claimed_by IS NOT NULL AND ` + live,
			`CREATE INDEX IF NOT EXISTS ` + table + `_sent ON ` + table + ` (sent_at) WHERE sent_at IS NOT NULL`,
		},
		insert: `INSERT INTO ` + table + ` (event_id, event_type, source, event_time, content_type, data, metadata, ordering_key, created_at) VALUES `,
		// ?1 relay, ?2 now, ?3 lease end, ?4 limit.
		claim: `UPDATE ` + table + ` SET claimed_by = ?1, lease_until = ?3, attempts = attempts + 1
WHERE seq IN (
	WITH blocked AS (
		SELECT ordering_key, min(seq) AS from_seq FROM ` + table + `
		WHERE claimed_by IS NOT NULL AND ` + live + ` AND claimed_by <> ?1 AND lease_until >= ?2
		GROUP BY ordering_key)
	SELECT r.seq FROM ` + table + ` r LEFT JOIN blocked b ON b.ordering_key = r.ordering_key
	WHERE r.sent_at IS NULL AND r.dead_at IS NULL AND (b.from_seq IS NULL OR r.seq < b.from_seq)
	AND (r.lease_until IS NULL OR r.lease_until < ?2 OR r.claimed_by = ?1)
	ORDER BY r.seq LIMIT ?4)
RETURNING ` + rowColumns + `, ?2 - created_at`,
		sent:    `UPDATE ` + table + ` SET sent_at = ?1, claimed_by = NULL, lease_until = NULL WHERE seq IN (SELECT value FROM json_each(?2))`,
		deleted: `DELETE FROM ` + table + ` WHERE seq IN (SELECT value FROM json_each(?1))`,
		dead:    `UPDATE ` + table + ` SET dead_at = ?3, dead_reason = ?2, claimed_by = NULL, lease_until = NULL WHERE seq = ?1`,
		release: `UPDATE ` + table + ` SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ?1 AND sent_at IS NULL`,
		purge: `DELETE FROM ` + table + ` WHERE seq IN (SELECT seq FROM ` + table +
			` WHERE sent_at < ?1 ORDER BY sent_at LIMIT ?2)`,
		lag: `SELECT COALESCE((SELECT ?1 - created_at FROM ` + table + ` WHERE ` + live + ` ORDER BY seq LIMIT 1), 0)`,
	}
}

// withoutNotify drops the NOTIFY trigger from st: relays poll.
func (st *statements) withoutNotify(table string) {
	name := strings.ReplaceAll(table, ".", "_")
	st.schema = append(st.schema[:len(st.schema)-2:len(st.schema)-2],
		`DROP TRIGGER IF EXISTS `+name+`_notify ON `+table,
		`DROP FUNCTION IF EXISTS `+table+`_notify()`)
	st.listen = ""
}

// SchemaSQL returns the statements that create the outbox table named
// table (with its indexes and, on PostgreSQL, the trigger that wakes
// relays) in dialect d, separated by ";\n". Outbox.CreateSchema runs them;
// SchemaSQL is for migration tools. Every statement is idempotent.
func SchemaSQL(d Dialect, table string) (string, error) {
	st, err := statementsFor(d, table)
	if err != nil {
		return "", err
	}
	return strings.Join(st.schema, ";\n") + ";\n", nil
}

func statementsFor(d Dialect, table string) (statements, error) {
	if err := checkTable(d, table); err != nil {
		return statements{}, err
	}
	switch d {
	case Postgres:
		return postgresStatements(table), nil
	case SQLite:
		return sqliteStatements(table), nil
	}
	return statements{}, fmt.Errorf("%w: dialect %q: want %q or %q", ErrInvalidOption, d, Postgres, SQLite)
}
