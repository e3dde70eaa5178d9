package nats

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gossipbus/gossip/gossip/driver"
)

// W3C baggage values are percent-encoded by definition and tracestate and
// baggage lists may hold spaces after their commas: the trace headers must
// come back exactly as they were given.
func TestWireTraceHeadersRoundTripPercentAndSpaces(t *testing.T) {
	m := &driver.Message{
		ID: "1", Type: "a.b", Source: "s",
		Metadata: map[string]string{
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"tracestate":  "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7",
			"baggage":     "userId=alice%40example.com, serverNode=DF%2028",
		},
	}
	got := roundTrip(t, m)
	assert.Equal(t, m.Metadata, got.Metadata)
}

// A trace header value that a header cannot carry as it is (a line break,
// edge spaces, non-ASCII) still comes back exactly.
func TestWireTraceHeadersRoundTripUnsafeValues(t *testing.T) {
	m := &driver.Message{
		ID: "1", Type: "a.b", Source: "s",
		Metadata: map[string]string{"traceparent": " padded ", "tracestate": "a=1\r\nb=2", "baggage": "k=värde"},
	}
	got := roundTrip(t, m)
	assert.Equal(t, m.Metadata, got.Metadata)
}
