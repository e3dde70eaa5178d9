package memory

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip/driver"
)

// clock is a hand-moved time for the claim store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openClaims(t *testing.T, b *Broker, name string, retention time.Duration, c *clock) *claimStore {
	t.Helper()
	s, err := b.Conn().(*conn).Claims(context.Background(), name, retention)
	require.NoError(t, err)
	cs := s.(*claimStore)
	cs.now = c.now
	return cs
}

func TestClaimsExpireByTheClock(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Unix(1000, 0)}
	s := openClaims(t, NewBroker(), "x", time.Hour, c)
	state, _ := s.Claim(ctx, "k", "a", time.Minute)
	require.Equal(t, driver.Claimed, state)
	c.t = c.t.Add(time.Minute - time.Nanosecond)
	state, _ = s.Claim(ctx, "k", "b", time.Minute)
	assert.Equal(t, driver.Busy, state, "the lease has not ended")
	c.t = c.t.Add(time.Nanosecond)
	state, _ = s.Claim(ctx, "k", "b", time.Minute)
	assert.Equal(t, driver.Claimed, state, "the lease ended")
	require.NoError(t, s.Complete(ctx, "k", "b"))
	c.t = c.t.Add(time.Hour - time.Nanosecond)
	state, _ = s.Claim(ctx, "k", "a", time.Minute)
	assert.Equal(t, driver.Done, state, "within the retention")
	c.t = c.t.Add(time.Nanosecond)
	state, _ = s.Claim(ctx, "k", "a", time.Minute)
	assert.Equal(t, driver.Claimed, state, "after the retention")
}

// Expired entries go without a goroutine: each call drops some it samples.
func TestClaimsSweepExpiredEntries(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Unix(1000, 0)}
	s := openClaims(t, NewBroker(), "x", time.Hour, c)
	const n = 1000
	for i := range n {
		_, _ = s.Claim(ctx, "k"+strconv.Itoa(i), "a", time.Second)
	}
	c.t = c.t.Add(time.Second)
	for i := range n {
		_, _ = s.Claim(ctx, "live"+strconv.Itoa(i), "a", time.Minute)
	}
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	assert.Less(t, len(s.t.entries), n+n/10, "most expired entries were dropped by the calls after them")
}

func TestClaimsPrivateBrokersShareNothing(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Unix(1000, 0)}
	b := NewBroker()
	one, same, other := openClaims(t, b, "x", time.Hour, c), openClaims(t, b, "x", time.Hour, c), openClaims(t, NewBroker(), "x", time.Hour, c)
	_, _ = one.Claim(ctx, "k", "a", time.Minute)
	state, _ := same.Claim(ctx, "k", "b", time.Minute)
	assert.Equal(t, driver.Busy, state, "one broker, one store")
	state, _ = other.Claim(ctx, "k", "b", time.Minute)
	assert.Equal(t, driver.Claimed, state, "another broker's store is another store")
}
