package outbox

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gossipbus/gossip/gossip"
)

// claimed is one row a relay holds: its event and how old the row was
// when it was claimed.
type claimed struct {
	seq     int64
	event   *gossip.Event
	age     time.Duration
	claimAt time.Time
	bad     error // the row does not make an event: set aside
}

// relayBatch claims up to BatchSize rows, publishes them and marks them
// sent (or dead). It returns the number of rows claimed.
func (r *Relay) relayBatch(ctx context.Context) (int, error) {
	rows, err := r.claim(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.m.failures.Add(ctx, 1, r.m.databaseFailure)
		}
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	var good []claimed
	var asideErr error // a row that could not be set aside: back off
	for _, c := range rows {
		if c.bad != nil {
			asideErr = cmp.Or(asideErr, r.setAside(ctx, c, c.bad))
			continue
		}
		good = append(good, c)
	}
	if len(good) == 0 {
		return len(rows), asideErr
	}
	err = r.publish(ctx, good)
	if isPoison(err) {
		// One of the batch is refused: find it, one event at a time.
		err = nil
		for i, c := range good {
			perr := r.publish(ctx, good[i:i+1])
			if isPoison(perr) {
				asideErr = cmp.Or(asideErr, r.setAside(ctx, c, perr))
				continue
			}
			if perr != nil {
				err = perr // transport: the rest waits, in order
				break
			}
		}
	}
	return len(rows), cmp.Or(err, asideErr)
}

// isPoison reports whether err is the bus refusing an event, which no retry
// changes.
func isPoison(err error) bool {
	return errors.Is(err, gossip.ErrInvalidEvent) || errors.Is(err, gossip.ErrInvalidEventType) ||
		errors.Is(err, gossip.ErrEventTooLarge)
}

// publish sends rows' events in one Publish and, once it returned nil,
// marks the rows sent.
func (r *Relay) publish(ctx context.Context, rows []claimed) error {
	events := make([]*gossip.Event, len(rows))
	for i, c := range rows {
		events[i] = c.event
	}
	pctx, cancel := context.WithTimeout(ctx, r.opts.PublishTimeout)
	err := r.bus.Publish(pctx, events...)
	cancel()
	if err != nil {
		if !isPoison(err) {
			r.m.failures.Add(ctx, 1, r.m.transportFailure)
		}
		return err
	}
	if r.afterPublish != nil {
		ids := make([]string, len(events))
		for i, e := range events {
			ids[i] = e.ID
		}
		r.afterPublish(ids)
	}
	// Sent is sent: mark it even when ctx has just ended.
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.PublishTimeout)
	defer mcancel()
	if err := r.markSent(mctx, rows); err != nil {
		// The rows are re-sent after the lease, with the same IDs.
		r.m.failures.Add(ctx, 1, r.m.databaseFailure)
		return fmt.Errorf("gossip: outbox: mark %d rows sent in %s (they will be sent again): %w", len(rows), r.o.table, err)
	}
	now := time.Now()
	for _, c := range rows {
		r.m.lag.Record(ctx, (c.age + now.Sub(c.claimAt)).Seconds(), r.m.attrs)
	}
	r.m.relayed.Add(ctx, int64(len(rows)), r.m.attrs)
	return nil
}

func (r *Relay) markSent(ctx context.Context, rows []claimed) error {
	seqs := make([]int64, len(rows))
	for i, c := range rows {
		seqs[i] = c.seq
	}
	var err error
	switch {
	case r.o.dialect == Postgres && r.opts.Retention == 0:
		_, err = r.o.db.ExecContext(ctx, r.o.st.deleted, seqs)
	case r.o.dialect == Postgres:
		_, err = r.o.db.ExecContext(ctx, r.o.st.sent, seqs)
	case r.opts.Retention == 0:
		_, err = r.o.db.ExecContext(ctx, r.o.st.deleted, jsonInts(seqs))
	default:
		_, err = r.o.db.ExecContext(ctx, r.o.st.sent, time.Now().UnixMicro(), jsonInts(seqs))
	}
	return err
}

func jsonInts(v []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, n := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(n, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// maxReason bounds the reason stored with a row set aside.
const maxReason = 2000

// setAside marks a row dead with its reason: it is never claimed again,
// and the rows behind it go on.
func (r *Relay) setAside(ctx context.Context, c claimed, reason error) error {
	msg := reason.Error()
	if len(msg) > maxReason {
		msg = strings.ToValidUTF8(msg[:maxReason], "") + "…"
	}
	id, typ := "", ""
	if c.event != nil {
		id, typ = c.event.ID, string(c.event.Type)
	}
	r.log.LogAttrs(ctx, slog.LevelError, "outbox row set aside: the bus refuses it",
		slog.Int64("seq", c.seq), slog.String("event_id", id), slog.String("event_type", typ), slog.String("reason", msg))
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.PublishTimeout)
	defer cancel()
	args := []any{c.seq, msg}
	if r.o.dialect == SQLite {
		args = append(args, time.Now().UnixMicro())
	}
	if _, err := r.o.db.ExecContext(mctx, r.o.st.dead, args...); err != nil {
		// The row stays claimed and is tried (and set aside) again after
		// the relay's backoff: nothing lost, no hot loop.
		r.m.failures.Add(ctx, 1, r.m.databaseFailure)
		return fmt.Errorf("gossip: outbox: set row %d of %s aside: %w", c.seq, r.o.table, err)
	}
	r.m.dead.Add(ctx, 1, r.m.attrs)
	return nil
}

// claim takes up to BatchSize rows for this relay, oldest first.
func (r *Relay) claim(ctx context.Context) ([]claimed, error) {
	var rows *sql.Rows
	var tx *sql.Tx
	var err error
	if r.o.dialect == Postgres {
		// One claim at a time per table: a claim sees the leases of the one
		// before it, so a key's rows never go to two relays at once.
		if tx, err = r.o.db.BeginTx(ctx, nil); err != nil {
			return nil, fmt.Errorf("gossip: outbox: claim rows: %w", err)
		}
		defer func() { _ = tx.Rollback() }()
		// A claim lost in a database crash only loses its lease: no need
		// to wait for the WAL flush.
		if _, err = tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return nil, fmt.Errorf("gossip: outbox: claim rows: %w", err)
		}
		if _, err = tx.ExecContext(ctx, r.o.st.lockSQL); err != nil {
			return nil, fmt.Errorf("gossip: outbox: claim rows: %w", err)
		}
		rows, err = tx.QueryContext(ctx, r.o.st.claim, r.owner, r.opts.Lease.Microseconds(), r.opts.BatchSize)
	} else {
		now := time.Now()
		rows, err = r.o.db.QueryContext(ctx, r.o.st.claim, r.owner, now.UnixMicro(), now.Add(r.opts.Lease).UnixMicro(), r.opts.BatchSize)
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: outbox: claim rows from %s: %w", r.o.table, err)
	}
	out, err := scanClaimed(rows)
	if err != nil {
		return nil, fmt.Errorf("gossip: outbox: claim rows from %s: %w", r.o.table, err)
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return nil, fmt.Errorf("gossip: outbox: claim rows from %s: %w", r.o.table, err)
		}
	}
	slices.SortFunc(out, func(a, b claimed) int { return int(a.seq - b.seq) })
	return out, nil
}

func scanClaimed(rows *sql.Rows) ([]claimed, error) {
	defer func() { _ = rows.Close() }()
	var out []claimed
	now := time.Now()
	for rows.Next() {
		var (
			c                          claimed
			id, typ, src, when, ct, md string
			data                       []byte
			ageMicros                  int64
		)
		if err := rows.Scan(&c.seq, &id, &typ, &src, &when, &ct, &data, &md, &ageMicros); err != nil {
			return nil, err
		}
		c.age, c.claimAt = time.Duration(ageMicros)*time.Microsecond, now
		e := &gossip.Event{ID: id, Type: gossip.EventType(typ), Source: src}
		c.event = e
		ts, err := time.Parse(time.RFC3339Nano, when)
		if err != nil {
			c.bad = fmt.Errorf("%w %s (%s): stored time %q: %v", gossip.ErrInvalidEvent, id, typ, when, err)
		}
		e.Timestamp = ts
		if md != "{}" && c.bad == nil {
			if err := json.Unmarshal([]byte(md), &e.Metadata); err != nil {
				c.bad = fmt.Errorf("%w %s (%s): stored metadata: %v", gossip.ErrInvalidEvent, id, typ, err)
			}
		}
		if data != nil {
			e.SetEncodedData(data, ct)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
