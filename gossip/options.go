package gossip

import (
	"fmt"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// SubscribeOption configures one subscription.
type SubscribeOption func(*subscribeConfig)

type subscribeConfig struct {
	group         string
	workers       int
	maxDeliveries int
	backoff       time.Duration
	maxBackoff    time.Duration
	start         driver.Start
	middleware    []Middleware
	exclusive     time.Duration // the lease of an Exclusive member; 0: not exclusive
	byKey         bool
}

// Group makes the subscription a member of the named consumer group:
// members of one group (with the same pattern) share its events, each event
// handled by one of them; every group gets every event. On Redis Streams and
// JetStream the group is durable: events published while all its members
// are away reach it when one returns. The name follows the token rules of
// event types.
func Group(name string) SubscribeOption {
	return func(c *subscribeConfig) { c.group = name }
}

// Workers sets the number of handler goroutines of this subscription,
// overriding Config.Workers: 1 to 10,000. Workers(1) handles one
// publisher's events in publish order (except after a redelivery);
// OrderedByKey keeps order per key with any number of workers.
func Workers(n int) SubscribeOption {
	return func(c *subscribeConfig) { c.workers = n }
}

// MaxDeliveries sets the number of delivery attempts before an event is
// dead-lettered (default Config.MaxDeliveries, itself 5 by default).
// MaxDeliveries(1) dead-letters on the first failure. Range: 1 to 1,000,000.
func MaxDeliveries(n int) SubscribeOption {
	return func(c *subscribeConfig) { c.maxDeliveries = n }
}

// RetryBackoff sets the delay before the first redelivery and its cap for
// this subscription; the delay doubles per attempt with ±20% jitter.
// Range: 0 < initial <= max <= 24h.
func RetryBackoff(initial, max time.Duration) SubscribeOption {
	return func(c *subscribeConfig) { c.backoff, c.maxBackoff = initial, max }
}

// FromOldest makes a new durable group start with the oldest events the
// transport still holds, instead of those published after it was created.
// It has no effect on a group that already exists or on broadcast
// subscriptions.
func FromOldest() SubscribeOption {
	return func(c *subscribeConfig) { c.start = driver.StartOldest }
}

// WithMiddleware adds middleware to this subscription's handler only,
// inside the bus's middleware.
func WithMiddleware(m ...Middleware) SubscribeOption {
	return func(c *subscribeConfig) { c.middleware = append(c.middleware, m...) }
}

// Exclusive makes the subscription one member of its group (Group is
// required) of which only one is active at a time: the member holding the
// group's lease in the bus's claim store (see EventBus.Claims) subscribes on
// the transport and handles every event of the group; the others stand by
// and try to take the lease every lease/3. With Workers(1) or OrderedByKey
// that keeps the group's order across several processes, with a standby
// ready to take over.
//
// lease (0: 15s; 100ms to 24h) is how long a member that stopped without
// leaving (a crash, a network partition) keeps the group: a standby takes
// over at most a lease after the active member's last renewal. An active
// member that loses its lease, or cannot renew it for two thirds of a
// lease, stops fetching at once and cancels its running handlers' ctx,
// before its lease ends, so two members do not run handlers together while
// the clocks agree and handlers heed their ctx. A member that leaves
// (Unsubscribe, Shutdown) keeps renewing its lease while its in-flight
// events finish and settle, then hands it over at once.
//
// On durable transports (Redis Streams, JetStream) events published during
// a handover wait for the next active member; on NATS core and memory, as
// for any group without a member, they go nowhere. A new durable group is
// created by its first active member, as by any first member. The lease is
// the key "<group>/<pattern>" in the claim store "gossip-exclusive"
// (EventBus.Claims), where operators can see who holds it. The transport
// needs a claim store: Subscribe fails with ErrClaimsUnsupported otherwise.
// Subscription.Active says whether this member is the active one.
func Exclusive(lease time.Duration) SubscribeOption {
	return func(c *subscribeConfig) {
		if lease == 0 {
			lease = defaultExclusiveLease
		}
		c.exclusive = lease
	}
}

const (
	defaultExclusiveLease = 15 * time.Second
	minExclusiveLease     = 100 * time.Millisecond
	maxExclusiveLease     = 24 * time.Hour
)

const (
	maxWorkers       = 10_000
	maxMaxDeliveries = 1_000_000
	maxRetryBackoff  = 24 * time.Hour
)

// validate checks every numeric option against its documented range.
func (c *subscribeConfig) validate() error {
	switch {
	case c.workers < 1 || c.workers > maxWorkers:
		return fmt.Errorf("%w: Workers(%d): must be 1 to %d", ErrInvalidOption, c.workers, maxWorkers)
	case c.maxDeliveries < 1 || c.maxDeliveries > maxMaxDeliveries:
		return fmt.Errorf("%w: MaxDeliveries(%d): must be 1 to %d", ErrInvalidOption, c.maxDeliveries, maxMaxDeliveries)
	case c.backoff <= 0 || c.maxBackoff < c.backoff || c.maxBackoff > maxRetryBackoff:
		return fmt.Errorf("%w: RetryBackoff(%v, %v): must be 0 < initial <= max <= %v", ErrInvalidOption, c.backoff, c.maxBackoff, maxRetryBackoff)
	case c.exclusive != 0 && (c.exclusive < minExclusiveLease || c.exclusive > maxExclusiveLease):
		return fmt.Errorf("%w: Exclusive(%v): the lease must be %v to %v", ErrInvalidOption, c.exclusive, minExclusiveLease, maxExclusiveLease)
	case c.exclusive != 0 && c.group == "":
		return fmt.Errorf("%w: Exclusive needs a Group: it picks the one active member of a group", ErrInvalidOption)
	}
	return nil
}
