package gossip

// The memory transport is the default: it registers itself here so that a
// bus needs no import to run in process.
import _ "github.com/gossipbus/gossip/drivers/memory"
