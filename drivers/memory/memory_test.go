package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/drivertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Config: func(t testing.TB, ns string) gossip.Config {
			return gossip.Config{Driver: "memory://" + ns}
		},
		Capabilities: drivertest.Capabilities{Groups: true, HandbackInOrder: true},
	})
}
