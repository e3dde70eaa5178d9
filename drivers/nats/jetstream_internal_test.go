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
