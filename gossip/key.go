package gossip

import "maps"

// MetaPartitionKey is the metadata key an event's ordering key travels
// under: the CloudEvents partitionkey extension, so other CloudEvents
// producers and consumers read and write it as they do any extension
// attribute (ce-partitionkey in binary mode).
const MetaPartitionKey = "partitionkey"

// WithKey sets the event's ordering key and returns e, for chaining. A
// subscription made with OrderedByKey handles the events of one key one at a
// time, in delivery order, and events of different keys in parallel. The
// key is metadata (MetaPartitionKey) and follows the metadata value rule:
// any valid UTF-8. The empty string is no key: WithKey("") removes it, and
// an event whose partitionkey is empty is handled as one without a key.
func (e *Event) WithKey(key string) *Event {
	if key != "" {
		return e.WithMetadata(MetaPartitionKey, key)
	}
	if _, ok := e.Metadata[MetaPartitionKey]; ok {
		if e.sharedMeta {
			e.Metadata = maps.Clone(e.Metadata)
			e.sharedMeta = false
		}
		delete(e.Metadata, MetaPartitionKey)
	}
	return e
}

// Key is the event's ordering key, "" when it has none.
func (e *Event) Key() string { return e.Metadata[MetaPartitionKey] }
