package gossip

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gossipbus/gossip/gossip/driver"
)

func TestDeadLetterTypeIsShortenedToAValidType(t *testing.T) {
	long := strings.Repeat("abcdefghi.", 24) + "end" // 243 bytes: valid
	assert.NoError(t, driver.ValidateType(long))
	assert.Error(t, driver.ValidateType(string(DeadLetterType("billing", EventType(long)))), "the plain dead-letter type is too long")

	for _, tc := range []struct{ group, typ, prefix string }{
		{"billing", long, "dead_letter.billing.abcdefghi."},
		{"", long, "dead_letter._.abcdefghi."},
		{"g", "not valid", "dead_letter.g.unknown"},
		{"g", "orders.created", "dead_letter.g.orders.created"},
	} {
		got := string(deadLetterTypeFor(tc.group, tc.typ))
		assert.NoError(t, driver.ValidateType(got), got)
		assert.True(t, strings.HasPrefix(got, tc.prefix), "%q does not start with %q", got, tc.prefix)
		if len(tc.typ) > 200 {
			assert.True(t, strings.HasSuffix(got, ".truncated"), got)
		}
	}
}

func TestTruncateListStaysWithinItsLimit(t *testing.T) {
	items := []string{`"b"`, `"a"`, strings.Repeat("x", 30)}
	assert.Equal(t, `"a","b",`+strings.Repeat("x", 30), truncateList(items, 100))
	got := truncateList([]string{`"a"`, `"b"`, strings.Repeat("x", 30)}, 12)
	assert.Equal(t, `"a","b",...`, got)
}
