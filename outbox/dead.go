package outbox

import (
	"context"
	"fmt"
	"time"
)

// DeadRow is a row the relay set aside because the bus refuses it (an
// invalid event, one over the size limit): it is never retried on its own
// and never holds up the rows behind it.
type DeadRow struct {
	Seq       int64  // the row's sequence number
	EventID   string // the stored event's ID
	EventType string
	Reason    string    // the error the relay got, as text
	DeadAt    time.Time // when it was set aside
}

// Dead lists up to limit rows set aside, oldest first.
func (o *Outbox) Dead(ctx context.Context, limit int) ([]DeadRow, error) {
	q := `SELECT seq, event_id, event_type, COALESCE(dead_reason, ''), dead_at FROM ` + o.table +
		` WHERE dead_at IS NOT NULL ORDER BY seq LIMIT `
	if o.dialect == Postgres {
		q += "$1"
	} else {
		q += "?"
	}
	rows, err := o.db.QueryContext(ctx, q, limit)
	if err != nil {
		return nil, fmt.Errorf("gossip: outbox: list dead rows of %s: %w", o.table, err)
	}
	defer func() { _ = rows.Close() }()
	var out []DeadRow
	for rows.Next() {
		var d DeadRow
		if o.dialect == Postgres {
			err = rows.Scan(&d.Seq, &d.EventID, &d.EventType, &d.Reason, &d.DeadAt)
		} else {
			var micros int64
			err = rows.Scan(&d.Seq, &d.EventID, &d.EventType, &d.Reason, &micros)
			d.DeadAt = time.UnixMicro(micros)
		}
		if err != nil {
			return nil, fmt.Errorf("gossip: outbox: list dead rows of %s: %w", o.table, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gossip: outbox: list dead rows of %s: %w", o.table, err)
	}
	return out, nil
}

// Requeue makes dead rows pending again, for a relay to try once more
// (after the bus's limit was raised, say); it returns how many it found.
// A requeued row goes out after the rows of its key written before it
// that are still pending.
func (o *Outbox) Requeue(ctx context.Context, seqs ...int64) (int64, error) {
	var n int64
	for _, s := range seqs {
		q := `UPDATE ` + o.table + ` SET dead_at = NULL, dead_reason = NULL WHERE dead_at IS NOT NULL AND seq = `
		if o.dialect == Postgres {
			q += "$1"
		} else {
			q += "?"
		}
		res, err := o.db.ExecContext(ctx, q, s)
		if err != nil {
			return n, fmt.Errorf("gossip: outbox: requeue row %d of %s: %w", s, o.table, err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}

// Pending counts the rows not yet sent (nor set aside).
func (o *Outbox) Pending(ctx context.Context) (int, error) {
	var n int
	err := o.db.QueryRowContext(ctx, `SELECT count(*) FROM `+o.table+` WHERE sent_at IS NULL AND dead_at IS NULL`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("gossip: outbox: count pending rows of %s: %w", o.table, err)
	}
	return n, nil
}
