package nats

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// covers tells whether an existing stream captures the connection's
// subjects.
func TestCovers(t *testing.T) {
	assert.True(t, covers("p.>", "p.>"))
	assert.True(t, covers(">", "p.>"))
	assert.True(t, covers("*.>", "p.>"))
	assert.False(t, covers("p.a.>", "p.>"))
	assert.False(t, covers("q.>", "p.>"))
	assert.False(t, covers("p.*", "p.>"))
}

// The delivery count comes from the ack subject in both layouts, as
// nats.go's Metadata reads it; other subjects are left to Metadata.
func TestNumDelivered(t *testing.T) {
	for _, tc := range []struct {
		reply string
		n     int
		ok    bool
	}{
		{"$JS.ACK.EVENTS.workers.3.101.7.1767225600000000000.0", 3, true},
		{"$JS.ACK._.ACCHASH.EVENTS.workers.12.101.7.1767225600000000000.0.tok", 12, true},
		{"$JS.ACK.hub.ACCHASH.EVENTS.workers.1.101.7.1767225600000000000.0", 1, true},
		{"$JS.ACK.EVENTS.workers.x.101.7.1767225600000000000.0", 0, false},
		{"$JS.ACK.EVENTS.workers..101.7.1767225600000000000.0", 0, false},
		{"$JS.ACK.EVENTS.workers.3.101.7.176", 0, false},
		{"$JS.ACK.a.b.EVENTS.workers.3.101.7.176", 0, false},
		{"_INBOX.abc.def", 0, false},
		{"", 0, false},
	} {
		n, ok := numDelivered(tc.reply)
		assert.Equal(t, tc.ok, ok, tc.reply)
		assert.Equal(t, tc.n, n, tc.reply)
	}
}
