// Package embeddednats starts a NATS server in process for the examples'
// -driver nats. Only what imports it links nats-server: the examples with
// -tags embeddednats, and their tests.
package embeddednats

import "github.com/gossipbus/gossip/drivers/nats/natsserver"

// Start starts a NATS server with JetStream and returns its URL and how to
// stop it.
func Start() (url string, stop func(), err error) {
	srv, err := natsserver.Start(natsserver.Options{})
	if err != nil {
		return "", nil, err
	}
	return srv.URL(), srv.Shutdown, nil
}
