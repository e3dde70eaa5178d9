// Package outbox is a transactional outbox for gossip: a service stores
// its events in a table of its own database, in the same transaction as
// the business write, and a Relay publishes them through an EventBus once
// the transaction committed. The write and its events commit together or
// not at all: no event for a rolled-back write, no write without its event
// if the process dies right after the commit.
//
//	ob, err := outbox.New(db, outbox.Options{})   // PostgreSQL or SQLite
//	err = ob.CreateSchema(ctx)                      // or run SchemaSQL in a migration
//
//	tx, err := db.BeginTx(ctx, nil)
//	_, err = tx.ExecContext(ctx, "INSERT INTO users ...")
//	err = ob.Publish(ctx, tx, gossip.NewEvent("user_service.user.created", u))
//	err = tx.Commit()
//
//	relay, err := ob.NewRelay(bus, outbox.RelayOptions{})
//	go relay.Run(ctx)
//
// Publish checks events exactly as EventBus.Publish does, fills their IDs,
// encodes their payloads and writes the trace context of ctx's span into
// their metadata. The relay claims committed rows oldest first, publishes
// them with their original IDs and marks them sent only once Publish
// returned nil (the transport holds them). Delivery is at least once: a
// relay that dies between the two re-sends the rows with the same IDs,
// which JetStream's duplicate window drops, and which a consumer whose
// handler runs behind middleware.Idempotent (on a claim store of its bus,
// EventBus.Claims) acks without running the handler again.
//
// Rows with the same ordering key (metadata KeyMetadata, "partitionkey";
// else the event type) are relayed in the order they were written, also
// with several relays on one PostgreSQL table: a key's pending rows belong
// to one relay at a time (a lease, taken over when a relay dies). On
// PostgreSQL an insert trigger's NOTIFY wakes relays at once; SQLite
// relays poll. A row the bus refuses (invalid, too large) is set aside
// with its reason (Outbox.Dead, Outbox.Requeue) and never blocks the rows
// behind it; transport failures are retried with backoff.
//
// The database is a *sql.DB of pgx's stdlib driver (PostgreSQL) or of
// modernc.org/sqlite (SQLite, pure Go). Package dburl opens either from one
// string ("sqlite", "sqlite:///path", "postgres://..."). docs/outbox.md has
// the schema, the guarantees and the failure cases.
package outbox
