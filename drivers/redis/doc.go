// Package redis is gossip's Redis transport, registered as "redis" and for
// the redis:// and rediss:// schemes. Import it for its side effect:
//
//	import _ "github.com/gossipbus/gossip/drivers/redis"
//
//	bus, err := gossip.NewEventBus(&gossip.Config{Driver: "redis://127.0.0.1:6379/0"})
//
// # Streams mode (the default)
//
// Each event type is a Redis Stream, <prefix>:{<type>}:stream; the hash tag
// keeps a type's keys in one Cluster slot. Publish is XADD with an
// approximate MAXLEN (MaxLen, default 100000 entries per type), a batch in
// one pipeline. A subscription with gossip.Group reads through a consumer
// group (XREADGROUP), created when the group's first member subscribes, at
// the events published from then on (gossip.FromOldest: everything the
// stream holds). gossip acknowledges handled entries in batches, which the
// driver queues and sends within a millisecond, one XACK per stream
// (ack=sync: Ack waits for the reply instead), retries failed ones in process while keeping
// them alive (XCLAIM ... JUSTID), and dead-letters poison. Entries a member
// left unacknowledged for longer than gossip.Config.AckWait — it died or
// stalled — are taken over by another member (XAUTOCLAIM) with their
// delivery count, so MaxDeliveries holds across members. A member leaving
// hands the entries it never started back to the group at once (their
// idle time set to AckWait): another member claims them within the claim
// interval (at most 1s by default). Blocking reads use connections of their
// own, not the client's pool, so one process may hold hundreds of
// subscriptions. A subscription without a group reads with XREAD from the
// position at Subscribe.
//
// Wildcard patterns ("orders.*.created", "audit.>") read every stream whose
// type matches. The driver keeps a registry of event types (the set
// <prefix>:types, announced on the channel <prefix>:types-added), so a
// pattern subscription finds types first published while it runs.
//
// # Pub/Sub mode (?mode=pubsub)
//
// PUBLISH and SUBSCRIBE / PSUBSCRIBE on the channel <prefix>:<type>: low
// latency broadcast, nothing kept, no groups (Subscribe with a group fails
// with gossip.ErrGroupsUnsupported). Retries and dead letters happen in
// process.
//
// # Connecting
//
// Open takes go-redis URLs (redis.ParseURL, ParseClusterURL,
// ParseFailoverURL) plus gossip's parameters mode, prefix, maxlen, maxage,
// dedup_window, claim_interval, block, ack, refresh_interval, cluster and, for rediss://,
// tls_ca, tls_cert and tls_key (PEM files of a private CA and a client
// certificate); New takes a ready go-redis client. Every numeric parameter
// has a range, checked by Open before it dials; the whole open ends by
// gossip.Config.DialTimeout (or the URL's dial_timeout when shorter).
// Errors never show the URL's password. docs/drivers/redis.md describes
// the URL forms for Cluster and Sentinel, the ranges, security, the wire
// format and tuning.
//
// dedup_window (DedupWindow) makes Publish drop an event whose ID was
// already added to its type's stream within the window. EventBus.Claims
// keeps claim stores (middleware.Idempotent) in keys
// <prefix>:claims:<name>:<key>, in both modes.
//
// Data, IDs and metadata travel byte for byte in both modes. What another
// producer writes that gossip's Publish would refuse (no CloudEvents
// attributes, an ID with control characters, Latin-1 metadata, ...) is
// dead-lettered with the reason; a key under the prefix that is not a
// stream is skipped by pattern subscriptions and logged once.
package redis
