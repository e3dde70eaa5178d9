// Package nats is gossip's NATS transport, registered as "nats" and for the
// nats:// scheme. Import it for its side effect:
//
//	import _ "github.com/gossipbus/gossip/drivers/nats"
//
//	bus, err := gossip.NewEventBus(&gossip.Config{Driver: "nats://127.0.0.1:4222"})
//
// "nats" alone connects to nats://127.0.0.1:4222. A URL may list several
// servers ("nats://a:4222,b:4222"), carry credentials as nats.go takes them
// ("nats://user:pass@host:4222", "nats://token@host:4222") and settings as
// query parameters ("?mode=core&prefix=orders"); see Driver.Open. New wraps a
// *nats.Conn the application made, with typed Options, for gossip.Config.Conn.
//
// # JetStream mode (the default)
//
// Events are stored in a JetStream stream and consumed by pull consumers:
// at-least-once, and a group's position survives restarts. The connection's
// prefix (default "gossip") is a namespace: event type "user.created"
// travels on subject "<prefix>.user.created", and one stream, named after
// the prefix, captures "<prefix>.>". The driver creates the stream when
// the bus opens if it is missing, and uses an existing one as it is, so an operator
// can create it beforehand with the limits and replicas they want.
//
// A group is a durable consumer named "<group>_<hash of the pattern>",
// filtered by the subscription pattern (NATS wildcards are gossip's); a
// broadcast listener is an ephemeral consumer created when Subscribe is
// called, so it sees every event published after Subscribe returns, and
// deleted when it closes. The driver pulls no more than
// gossip.Config.BufferSize deliveries ahead of the handlers and settles what
// gossip tells it: acks in batches (without waiting for the server's reply
// unless ack=sync; Close flushes), naks with a delay (NakWithDelay) for
// retries, InProgress to keep a slow handler's delivery, and a Nak at once
// for what a leaving member pulled but never started. Delivery counts are
// the server's; the consumer never drops a message on its own (MaxDeliver
// -1): gossip counts the attempts and dead-letters.
//
// Each event carries Nats-Msg-Id "<type>:<id>", so a retried publish within
// the stream's duplicate window is stored once. EventBus.Claims keeps claim
// stores (middleware.Idempotent) in a JetStream key-value bucket per store
// (Conn.ClaimBucket), in core mode too when the server has JetStream. Publish sends asynchronously
// and returns once every PubAck of its events is in; concurrent callers share
// the connection's writes, each waiting for its own PubAcks.
//
// # Core mode
//
// With mode=core events travel on plain subjects, groups are queue groups
// and nothing is stored: at-most-once, failed events are redelivered in
// process, and an event published while a group is away is gone. Publish
// returns once nats.go has taken the events, as nats.go's Publish does
// (Shutdown flushes what is left); with flush=sync it waits until the
// server has read them. A slow subscription holds at most PendingMsgs
// messages and PendingBytes bytes in the client (nats.go's defaults); what
// arrives beyond is dropped, counted in Subscription.Dropped and logged.
//
// # Security
//
// Credentials and TLS come from the URL: "nats://user:pass@host" (the
// password percent-encoded), "nats://token@host", and the parameters nkey
// (an NKey seed file), creds (a JWT credentials file), tls_ca, tls_cert and
// tls_key (PEM files). No error or log line holds a password, token or seed.
//
// # Wire format
//
// Events are CloudEvents 1.0 in binary mode: ce-specversion, ce-id, ce-type,
// ce-source, ce-time and content-type headers, the data in the body.
// Metadata travels as headers: traceparent, tracestate and baggage under
// their own names, keys that are valid CloudEvents extension names as
// "ce-<key>", any other key as "gossip-meta-<percent-encoded key>"; values
// are percent-encoded where they hold '%', '"', spaces, controls or
// non-ASCII. Messages that are not CloudEvents are dead-lettered with the
// reason; structured-mode CloudEvents (application/cloudevents+json) are
// read too.
//
// Package natsserver runs a JetStream server inside the process, for
// examples and tests.
package nats
