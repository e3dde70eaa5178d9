package tracing_test

import (
	"testing"

	"github.com/gossipbus/gossip/gossip"
)

func TestOneTraceAcrossServicesOnMemory(t *testing.T) {
	broker := "memory://tracing-" + gossip.NewID()
	chain(t, "memory", func(t *testing.T, service string) *gossip.EventBus {
		return newBus(t, broker, service)
	})
}
