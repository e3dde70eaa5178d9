package nats

import (
	natsgo "github.com/nats-io/nats.go"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Decode reads a message the connection's stream holds (fetched from it
// directly, as cmd/gossip does to list dead letters) the way a subscription
// reads it: the event type comes from the subject, the rest from the
// headers and body. An error wraps driver.ErrUnreadable and says why; the
// Message then holds what could be read.
func (c *Conn) Decode(subject string, h natsgo.Header, data []byte) (*driver.Message, error) {
	return c.decode(subject, h, data)
}
