package tracing_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/gossipbus/gossip/drivers/nats"
	"github.com/gossipbus/gossip/drivers/nats/natsserver"
	"github.com/gossipbus/gossip/gossip"
)

func TestOneTraceAcrossServicesOnNATS(t *testing.T) {
	for _, mode := range []string{"jetstream", "core"} {
		t.Run(mode, func(t *testing.T) {
			srv, err := natsserver.Start(natsserver.Options{})
			require.NoError(t, err)
			t.Cleanup(srv.Shutdown) // after the buses: cleanups run last first
			url := srv.URL() + "?mode=" + mode
			chain(t, "nats", func(t *testing.T, service string) *gossip.EventBus {
				return newBus(t, url, service) // a connection per service
			})
		})
	}
}
