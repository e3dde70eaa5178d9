package main

import (
	"github.com/gossipbus/gossip/gossip/driver"

	_ "github.com/gossipbus/gossip/drivers/nats"
	_ "github.com/gossipbus/gossip/drivers/redis"
)

// The gossip rows for NATS and Redis run when their drivers are linked in.
var (
	haveNATSDriver  = registered("nats")
	haveRedisDriver = registered("redis")
)

func registered(name string) bool {
	_, err := driver.Lookup(name)
	return err == nil
}
