package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Claims returns the claim store called name: one Redis key per claim,
// "<prefix>:claims:<name>:<key>", holding "c:<owner>" with the lease as its
// expiry while claimed and "d:<owner>" with the retention as its expiry
// once done. Each operation is one script on one key, so it works on
// Cluster. It works in both modes (the store needs no stream).
func (c *conn) Claims(_ context.Context, name string, retention time.Duration) (driver.Claims, error) {
	if retention <= 0 {
		return nil, fmt.Errorf("redis: claim store retention %v is not positive", retention)
	}
	return &claimStore{client: c.client, prefix: c.opts.prefix + ":claims:" + name + ":", retention: retention}, nil
}

type claimStore struct {
	client    goredis.UniversalClient
	prefix    string
	retention time.Duration
}

// claimScript takes KEYS[1] for owner ARGV[1] for ARGV[2] ms, or renews
// owner's lease; it returns 1 (claimed), 2 (busy) or 3 (done).
var claimScript = goredis.NewScript(`
local mine = 'c:' .. ARGV[1]
if redis.call('SET', KEYS[1], mine, 'NX', 'PX', ARGV[2]) then return 1 end
local v = redis.call('GET', KEYS[1])
if v == mine then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v and string.sub(v, 1, 2) == 'd:' then return 3 end
return 2`)

// ownedScript runs ARGV[2] on KEYS[1] when owner ARGV[1] holds it: PEXPIRE
// by ARGV[3] ms, SET done for ARGV[3] ms, or DEL. It returns 1 when it
// did, 0 when owner does not hold the key.
var ownedScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= 'c:' .. ARGV[1] then return 0 end
if ARGV[2] == 'extend' then redis.call('PEXPIRE', KEYS[1], ARGV[3])
elseif ARGV[2] == 'complete' then redis.call('SET', KEYS[1], 'd:' .. ARGV[1], 'PX', ARGV[3])
else redis.call('DEL', KEYS[1]) end
return 1`)

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

func (s *claimStore) Claim(ctx context.Context, key, owner string, lease time.Duration) (driver.ClaimState, error) {
	n, err := claimScript.Run(ctx, s.client, []string{s.prefix + key}, owner, ms(lease)).Int()
	if err != nil {
		return 0, fmt.Errorf("redis: claim %q: %w", key, err)
	}
	switch n {
	case 1:
		return driver.Claimed, nil
	case 2:
		return driver.Busy, nil
	case 3:
		return driver.Done, nil
	}
	return 0, fmt.Errorf("redis: claim %q: unexpected reply %d", key, n)
}

func (s *claimStore) owned(ctx context.Context, op, key, owner string, d time.Duration) error {
	n, err := ownedScript.Run(ctx, s.client, []string{s.prefix + key}, owner, op, ms(d)).Int()
	if err != nil {
		return fmt.Errorf("redis: %s claim %q: %w", op, key, err)
	}
	if n == 0 {
		return fmt.Errorf("redis: %s claim %q: %w", op, key, driver.ErrClaimNotHeld)
	}
	return nil
}

func (s *claimStore) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	return s.owned(ctx, "extend", key, owner, lease)
}

func (s *claimStore) Complete(ctx context.Context, key, owner string) error {
	return s.owned(ctx, "complete", key, owner, s.retention)
}

func (s *claimStore) Release(ctx context.Context, key, owner string) error {
	return s.owned(ctx, "release", key, owner, 0)
}

var _ driver.Claimer = (*conn)(nil)
