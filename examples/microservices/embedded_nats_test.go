package main

import (
	"github.com/gossipbus/gossip/examples/internal/embeddednats"
	"github.com/gossipbus/gossip/examples/internal/transport"
)

// The tests run the demo on an embedded NATS server with or without
// -tags embeddednats.
func init() { transport.StartEmbeddedNATS = embeddednats.Start }
