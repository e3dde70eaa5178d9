// Package gossip is an event bus for services that talk through events: one
// API and one set of delivery semantics over three transports — in-process
// memory, Redis and NATS — chosen by a config string.
//
// A service opens a bus, subscribes typed handlers and publishes events:
//
//	bus, err := gossip.NewEventBus(&gossip.Config{Driver: "nats://127.0.0.1:4222", Source: "email_service"})
//	...
//	bus.Subscribe("user_service.user.created", gossip.Typed(
//		func(ctx context.Context, e *gossip.Event, u UserCreated) error {
//			return sendWelcome(ctx, u)
//		}), gossip.Group("email_service"))
//	bus.Publish(ctx, gossip.NewEvent("email_service.email.sent", sent))
//
// The zero Config (Driver "memory") is an in-process bus with a broker of
// its own: no other bus sees its events. "memory://name" shares one broker
// among the buses of a process that open it, which is what services running
// in one process need; "redis://..." and "nats://..." need their
// driver packages imported (import _ "github.com/gossipbus/gossip/drivers/nats").
//
// Semantics, the same on every transport (docs/semantics.md has the table of
// where transports differ):
//
//   - Subscribe returns once the subscription is live.
//   - Without Group a subscription is a broadcast listener; with Group it
//     shares the events with the group's other members, and every group
//     gets every event. On Redis Streams and JetStream groups are durable.
//   - A handler returning nil acks; an error redelivers with exponential
//     backoff and jitter; after MaxDeliveries attempts, or at once for an
//     error made with Permanent, the event is published as a dead letter
//     under DeadLetterType(group, type), with the error and attempt count.
//     A panic is an error, never an ack.
//   - Typed and Decode give a handler the same payload on every transport.
//   - Publish returns once the transport holds the events; on memory, a
//     full buffer makes it wait until its ctx ends — it never drops.
//   - Shutdown stops fetching, lets in-flight handlers finish and ack, and
//     leaks no goroutine.
//   - OrderedByKey runs the events of one key (Event.WithKey) one at a time
//     in delivery order, retries included, and different keys in parallel.
//   - Events published with a handler's ctx carry the handled event's
//     correlation ID and its ID as causation ID (Event.CorrelationID,
//     Event.CausationID).
//
// Middleware (package middleware) wraps every handler: tracing, metrics,
// recovery, logging, retry, timeout, filters, and idempotency on a claim
// store the transport keeps (EventBus.Claims; docs/guarantees.md).
package gossip
