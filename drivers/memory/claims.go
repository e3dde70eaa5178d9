package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Claims returns the claim store called name of the connection's broker:
// every bus of one named broker ("memory://orders") shares it, as processes
// share a Redis or NATS store. Expired claims are dropped lazily, with no
// goroutine: on the next look at their key, and by every call, which looks
// at a few entries (sweepSample) from a random place of the table and drops
// those that expired, as Redis samples keys to expire them.
func (c *conn) Claims(_ context.Context, name string, retention time.Duration) (driver.Claims, error) {
	if retention <= 0 {
		return nil, fmt.Errorf("memory: claim store retention %v is not positive", retention)
	}
	t, _ := c.broker.claims.LoadOrStore(name, &claimTable{entries: map[string]claim{}})
	return &claimStore{t: t.(*claimTable), retention: retention, now: time.Now}, nil
}

// sweepSample is how many entries each call looks at to drop expired ones.
const sweepSample = 4

type claimTable struct {
	mu      sync.Mutex
	entries map[string]claim
}

// claim is one key's record: held by owner until until, or done (by
// owner) until until.
type claim struct {
	owner string
	until time.Time
	done  bool
}

type claimStore struct {
	t         *claimTable
	retention time.Duration
	now       func() time.Time
}

// lookup returns key's live record, dropping an expired one. t.mu is held.
func (t *claimTable) lookup(key string, now time.Time) (claim, bool) {
	n := 0
	for k, c := range t.entries { // a random place of the map each time
		if !now.Before(c.until) {
			delete(t.entries, k)
		}
		if n++; n == sweepSample {
			break
		}
	}
	c, ok := t.entries[key]
	if ok && !now.Before(c.until) {
		delete(t.entries, key)
		return claim{}, false
	}
	return c, ok
}

func (s *claimStore) Claim(_ context.Context, key, owner string, lease time.Duration) (driver.ClaimState, error) {
	now := s.now()
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	c, ok := s.t.lookup(key, now)
	switch {
	case ok && c.done:
		return driver.Done, nil
	case ok && c.owner != owner:
		return driver.Busy, nil
	}
	s.t.entries[key] = claim{owner: owner, until: now.Add(lease)}
	return driver.Claimed, nil
}

// held returns key's record when owner holds it. s.t.mu is held.
func (s *claimStore) held(key, owner string, now time.Time) error {
	c, ok := s.t.lookup(key, now)
	if !ok || c.done || c.owner != owner {
		return fmt.Errorf("memory: claim %q: %w", key, driver.ErrClaimNotHeld)
	}
	return nil
}

func (s *claimStore) Extend(_ context.Context, key, owner string, lease time.Duration) error {
	now := s.now()
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if err := s.held(key, owner, now); err != nil {
		return err
	}
	s.t.entries[key] = claim{owner: owner, until: now.Add(lease)}
	return nil
}

func (s *claimStore) Complete(_ context.Context, key, owner string) error {
	now := s.now()
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if err := s.held(key, owner, now); err != nil {
		return err
	}
	s.t.entries[key] = claim{owner: owner, until: now.Add(s.retention), done: true}
	return nil
}

func (s *claimStore) Release(_ context.Context, key, owner string) error {
	now := s.now()
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if err := s.held(key, owner, now); err != nil {
		return err
	}
	delete(s.t.entries, key)
	return nil
}

var _ driver.Claimer = (*conn)(nil)
