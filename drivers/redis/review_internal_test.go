package redis

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Metadata round-trips in Pub/Sub mode whatever its values, also the W3C
// trace keys with an empty value (a propagator that wrote no state).
func TestStructuredRoundTripsEmptyTraceValues(t *testing.T) {
	m := &driver.Message{
		ID: "1", Type: "a.b", Source: "s", Time: time.Unix(1, 0).UTC(), ContentType: "application/json",
		Data:     []byte(`{"x":1}`),
		Metadata: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "", "baggage": ""},
	}
	payload, err := encodeStructured(m)
	require.NoError(t, err)
	got, err := decodeStructured(m.Type, payload)
	require.NoError(t, err)
	assert.Equal(t, m.Metadata, got.Metadata, "%s", payload)
}
