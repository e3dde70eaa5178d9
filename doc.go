// Package gossip is the root of the gossip module and holds no code: the
// event bus is package github.com/gossipbus/gossip/gossip.
//
//	import "github.com/gossipbus/gossip/gossip"
//
//	bus, err := gossip.NewEventBus(&gossip.Config{Driver: "memory://app", Source: "email_service"})
//
// Run `go doc github.com/gossipbus/gossip/gossip` for the API. The transports
// are github.com/gossipbus/gossip/drivers/redis and .../drivers/nats (import
// them for their side effect), the handler middleware is
// github.com/gossipbus/gossip/middleware, and the README has a complete
// program to start from.
package gossip
