package redis

import (
	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

// The methods below let tools that read what the transport stores (such as
// cmd/gossip, which lists and replays dead letters and reports group lag)
// find and decode it. The driver.Conn that Open and New return has them;
// reach them with a type assertion on an interface holding what you need.

// Redis is the go-redis client of the connection.
func (c *conn) Redis() goredis.UniversalClient { return c.client }

// Mode is the connection's mode: Streams or PubSub.
func (c *conn) Mode() Mode { return c.opts.mode }

// Prefix is the connection's key prefix.
func (c *conn) Prefix() string { return c.opts.prefix }

// StreamKey is the key of the stream that holds events of type eventType.
func (c *conn) StreamKey(eventType string) string { return c.streamKey(eventType) }

// TypesKey is the key of the set of event types published under the
// prefix (the driver's type registry).
func (c *conn) TypesKey() string { return c.typesKey() }

// Decode reads the fields of a stream entry of type eventType the way a
// subscription reads them. An error wraps driver.ErrUnreadable and says
// why; the Message then holds what could be read.
func (c *conn) Decode(eventType string, values map[string]any) (*driver.Message, error) {
	return decodeEntry(eventType, values)
}
