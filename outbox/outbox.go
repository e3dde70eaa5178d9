package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gossipbus/gossip/gossip"
)

// ErrInvalidOption is wrapped by the errors New and Outbox.Relay return for
// an option out of its range.
var ErrInvalidOption = errors.New("gossip: outbox: invalid option")

// KeyMetadata is the metadata key whose value orders rows: rows with the
// same key are relayed one after another, in the order they were written.
// It is the CloudEvents partitionkey extension, the event's ordering key on
// the wire. An event without it is ordered by its type.
const KeyMetadata = gossip.MetaPartitionKey

// Options configure an Outbox. The zero value works, given a database of a
// driver the outbox recognizes.
type Options struct {
	// Dialect is the database's SQL dialect. Empty: detected from the
	// driver of the *sql.DB (pgx's stdlib driver is Postgres, modernc's is
	// SQLite).
	Dialect Dialect

	// Table is the outbox table (default DefaultTable, "gossip_outbox"):
	// letters, digits and '_', not starting with a digit; on PostgreSQL it
	// may be schema-qualified ("events.outbox").
	Table string

	// Source fills an empty Event.Source (default: the program's name), as
	// gossip.Config.Source does on a direct Publish.
	Source string

	// Codec encodes payloads when they are stored (default gossip.JSON).
	// The relay publishes the stored bytes as they are, whatever its bus's
	// codec.
	Codec gossip.Codec

	// NoNotify (PostgreSQL) leaves out the insert trigger whose NOTIFY
	// wakes relays as soon as rows commit (CreateSchema drops it where it
	// exists): relays then find rows by polling (RelayOptions.PollInterval).
	// PostgreSQL serializes the commits of transactions that NOTIFY while a
	// relay LISTENs, so the trigger caps the rate of writing transactions at
	// about one per WAL flush; set NoNotify when writes matter more than
	// the relay's first few milliseconds of lag (see docs/outbox.md).
	NoNotify bool

	// Propagator writes the trace context of Publish's ctx into each
	// stored event's metadata (default: the global propagator, or W3C
	// TraceContext and Baggage while the global one is the no-op default),
	// so the trace continues through the relay to the consumers.
	Propagator propagation.TextMapPropagator
}

// Outbox stores events in a database table, in the caller's transaction,
// for a Relay to publish once the transaction committed. Its methods are
// safe for concurrent use.
type Outbox struct {
	db      *sql.DB
	dialect Dialect
	table   string
	source  string
	codec   gossip.Codec
	prop    propagation.TextMapPropagator
	st      statements
}

var defaultPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// New returns an outbox on db. It does not touch the database: call
// CreateSchema (or run SchemaSQL's statements) before the first Publish.
func New(db *sql.DB, opts Options) (*Outbox, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil *sql.DB", ErrInvalidOption)
	}
	d := opts.Dialect
	if d == "" {
		var err error
		if d, err = DetectDialect(db); err != nil {
			return nil, err
		}
	}
	table := opts.Table
	if table == "" {
		table = DefaultTable
	}
	st, err := statementsFor(d, table)
	if err != nil {
		return nil, err
	}
	if opts.NoNotify && d == Postgres {
		st.withoutNotify(table)
	}
	o := &Outbox{db: db, dialect: d, table: table, source: opts.Source, codec: opts.Codec, prop: opts.Propagator, st: st}
	if o.source == "" {
		o.source = filepath.Base(os.Args[0])
	}
	if o.codec == nil {
		o.codec = gossip.JSON
	}
	return o, nil
}

// DetectDialect names the dialect of db's driver: Postgres for pgx's
// stdlib driver, SQLite for modernc.org/sqlite. Another driver is an error
// wrapping ErrInvalidOption: set Options.Dialect.
func DetectDialect(db *sql.DB) (Dialect, error) {
	switch t := fmt.Sprintf("%T", db.Driver()); {
	case strings.HasPrefix(t, "*stdlib."):
		return Postgres, nil
	case strings.HasPrefix(t, "*sqlite."):
		return SQLite, nil
	default:
		return "", fmt.Errorf("%w: cannot tell the SQL dialect of driver %s: set Options.Dialect", ErrInvalidOption, t)
	}
}

// Dialect is the outbox's SQL dialect.
func (o *Outbox) Dialect() Dialect { return o.dialect }

// Table is the outbox table's name.
func (o *Outbox) Table() string { return o.table }

// DB is the database the outbox writes to.
func (o *Outbox) DB() *sql.DB { return o.db }

// CreateSchema creates the outbox table, its indexes and (on PostgreSQL)
// the trigger that wakes relays, where they do not exist yet: the
// statements SchemaSQL returns, in one transaction.
func (o *Outbox) CreateSchema(ctx context.Context) error {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("gossip: outbox: create schema: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if o.st.lockSQL != "" { // concurrent CREATEs of one table collide
		if _, err := tx.ExecContext(ctx, o.st.lockSQL); err != nil {
			return fmt.Errorf("gossip: outbox: create schema: %w", err)
		}
	}
	for _, s := range o.st.schema {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("gossip: outbox: create schema of %s: %w", o.table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("gossip: outbox: create schema: %w", err)
	}
	return nil
}

// insertChunk bounds the rows of one INSERT statement.
const insertChunk = 100

// Publish stores events in the outbox table within tx, the caller's
// transaction: they are published by a Relay once tx commits, and never if
// it rolls back. Each event is checked as EventBus.Publish checks it (an
// invalid one is an error wrapping gossip.ErrInvalidEventType or
// gossip.ErrInvalidEvent, and nothing is stored); an empty ID, Timestamp
// or Source is filled in, so the caller's event holds the ID it will be
// delivered with. The payload is stored encoded, and the trace context of
// ctx's span goes into each event's metadata (traceparent, tracestate), as
// the tracing middleware's Publish would write it. The size limit is the
// relaying bus's: an event over it is set aside at relay time.
func (o *Outbox) Publish(ctx context.Context, tx *sql.Tx, events ...*gossip.Event) error {
	if tx == nil {
		return fmt.Errorf("%w: nil *sql.Tx", ErrInvalidOption)
	}
	rows := make([][]any, 0, len(events))
	now := time.Now().UnixMicro()
	for _, e := range events {
		row, err := o.row(ctx, e, now)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	for len(rows) > 0 {
		n := min(len(rows), insertChunk)
		if err := o.insert(ctx, tx, rows[:n]); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

func (o *Outbox) row(ctx context.Context, e *gossip.Event, now int64) ([]any, error) {
	gossip.Correlate(ctx, e) // written from a handler: the event follows its work
	if err := gossip.PrepareEvent(e, o.source); err != nil {
		return nil, err
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		o.propagator().Inject(ctx, metadataCarrier{e})
	}
	data, ct, err := gossip.EncodeData(o.codec, e)
	if err != nil {
		return nil, err
	}
	meta := "{}"
	if len(e.Metadata) > 0 {
		b, err := json.Marshal(e.Metadata)
		if err != nil {
			return nil, fmt.Errorf("%w %s (%s): metadata: %v", gossip.ErrInvalidEvent, e.ID, e.Type, err)
		}
		meta = string(b)
	}
	key := e.Metadata[KeyMetadata]
	if key == "" {
		key = string(e.Type)
	}
	row := []any{e.ID, string(e.Type), e.Source, e.Timestamp.UTC().Format(time.RFC3339Nano), ct, data, meta, key}
	if o.dialect == SQLite {
		row = append(row, now)
	}
	return row, nil
}

func (o *Outbox) insert(ctx context.Context, tx *sql.Tx, rows [][]any) error {
	var q strings.Builder
	q.WriteString(o.st.insert)
	args := make([]any, 0, len(rows)*len(rows[0]))
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for j, v := range r {
			if j > 0 {
				q.WriteString(", ")
			}
			args = append(args, v)
			if o.dialect == Postgres {
				fmt.Fprintf(&q, "$%d", len(args))
			} else {
				q.WriteByte('?')
			}
		}
		q.WriteByte(')')
	}
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("gossip: outbox: store %d events in %s: %w", len(rows), o.table, err)
	}
	return nil
}

func (o *Outbox) propagator() propagation.TextMapPropagator {
	if o.prop != nil {
		return o.prop
	}
	if p := otel.GetTextMapPropagator(); len(p.Fields()) > 0 {
		return p
	}
	return defaultPropagator
}

// metadataCarrier lets a propagator write an event's metadata.
type metadataCarrier struct{ e *gossip.Event }

func (c metadataCarrier) Get(key string) string { return c.e.Metadata[key] }
func (c metadataCarrier) Set(key, value string) { c.e.WithMetadata(key, value) }
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c.e.Metadata))
	for k := range c.e.Metadata {
		keys = append(keys, k)
	}
	return keys
}
