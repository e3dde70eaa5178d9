//go:build embeddednats

package transport

import "github.com/gossipbus/gossip/examples/internal/embeddednats"

func init() { StartEmbeddedNATS = embeddednats.Start }
