package nats

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gossipbus/gossip/gossip/driver"
)

// ClaimBucket is the JetStream key-value bucket that holds the claim store
// called name: "<stream>_claims_<name>", where stream is the connection's
// stream name ("gossip" when core mode has no prefix). Its stream is
// "KV_" + ClaimBucket.
func (c *Conn) ClaimBucket(name string) string {
	base := c.cfg.stream
	if base == "" {
		base = DefaultPrefix
	}
	return base + "_claims_" + name
}

// Claims returns the claim store called name, a JetStream key-value bucket
// (ClaimBucket) whose TTL is retention, made or updated here with the
// connection's storage and replicas. A record holds its owner and, while
// claimed, the lease's deadline; a lease that ended is taken over with a
// compare-and-set on the key's revision. Keys are stored base64url-encoded
// (a KV key is a subject). In core mode the server must have JetStream:
// without it Claims returns an error wrapping driver.ErrClaimsUnsupported.
func (c *Conn) Claims(ctx context.Context, name string, retention time.Duration) (driver.Claims, error) {
	if retention <= 0 {
		return nil, fmt.Errorf("nats: claim store retention %v is not positive", retention)
	}
	js := c.js
	if js == nil {
		var err error
		if js, err = jetstream.New(c.nc); err != nil {
			return nil, fmt.Errorf("nats: jetstream for claims: %w", err)
		}
	}
	bucket := c.ClaimBucket(name)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "gossip claim store " + name,
		TTL:         retention,
		Storage:     c.cfg.storage,
		Replicas:    c.cfg.replicas,
	})
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return nil, fmt.Errorf("nats: claim store %s needs JetStream, which the server (or account) does not enable: %w", name, driver.ErrClaimsUnsupported)
	case err != nil:
		return nil, fmt.Errorf("nats: claim bucket %s: %w", bucket, err)
	}
	return &claimStore{kv: kv, now: time.Now}, nil
}

type claimStore struct {
	kv  jetstream.KeyValue
	now func() time.Time
	// mine remembers the records this store wrote and still holds, by key
	// and owner, so that Extend, Complete and Release write with the
	// revision they know (one round trip) and read the key only when
	// someone else wrote it since.
	mine  sync.Map // heldKey → heldRecord
	added atomic.Uint64
}

// remember notes a record this store wrote for owner; every sweepEvery
// records it forgets those whose lease ended (claims never settled).
func (s *claimStore) remember(key, owner string, rev uint64, deadline time.Time) {
	s.mine.Store(heldKey{key, owner}, heldRecord{rev, deadline})
	if s.added.Add(1)%sweepEvery == 0 {
		now := s.now()
		s.mine.Range(func(k, v any) bool {
			if !now.Before(v.(heldRecord).deadline) {
				s.mine.Delete(k)
			}
			return true
		})
	}
}

const sweepEvery = 1024

type heldKey struct{ key, owner string }

type heldRecord struct {
	rev      uint64
	deadline time.Time
}

// claimRecord is a key's value: "c|<deadline, Unix ns>|<owner>" while
// claimed, "d|<owner>" once done.
type claimRecord struct {
	owner    string
	deadline time.Time
	done     bool
}

func (r claimRecord) encode() []byte {
	if r.done {
		return []byte("d|" + r.owner)
	}
	return []byte("c|" + strconv.FormatInt(r.deadline.UnixNano(), 10) + "|" + r.owner)
}

func decodeClaim(b []byte) (claimRecord, bool) {
	s := string(b)
	if owner, ok := strings.CutPrefix(s, "d|"); ok {
		return claimRecord{owner: owner, done: true}, true
	}
	rest, ok := strings.CutPrefix(s, "c|")
	if !ok {
		return claimRecord{}, false
	}
	ns, owner, ok := strings.Cut(rest, "|")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil {
		return claimRecord{}, false
	}
	return claimRecord{owner: owner, deadline: time.Unix(0, n)}, true
}

func claimKey(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

// casTries bounds Claim's compare-and-set retries when other owners write
// the key between its read and its write.
const casTries = 5

func (s *claimStore) Claim(ctx context.Context, key, owner string, lease time.Duration) (driver.ClaimState, error) {
	k := claimKey(key)
	for try := range casTries {
		now := s.now()
		deadline := now.Add(lease)
		mine := claimRecord{owner: owner, deadline: deadline}.encode()
		if try == 0 {
			// Most keys are new: try to create the record first.
			rev, err := s.kv.Create(ctx, k, mine)
			if err == nil {
				s.remember(key, owner, rev, deadline)
				return driver.Claimed, nil
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return 0, fmt.Errorf("nats: claim %q: %w", key, err)
			}
		}
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			rev, err := s.kv.Create(ctx, k, mine)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // another owner created it first: look again
			}
			if err != nil {
				return 0, fmt.Errorf("nats: claim %q: %w", key, err)
			}
			s.remember(key, owner, rev, deadline)
			return driver.Claimed, nil
		}
		if err != nil {
			return 0, fmt.Errorf("nats: claim %q: %w", key, err)
		}
		r, ok := decodeClaim(e.Value())
		switch {
		case !ok:
			return 0, fmt.Errorf("nats: claim %q: unreadable record %q in bucket %s", key, e.Value(), s.kv.Bucket())
		case r.done:
			return driver.Done, nil
		case r.owner != owner && now.Before(r.deadline):
			return driver.Busy, nil
		}
		// Free (its lease ended), or ours: take it, unless someone wrote
		// it since we read it.
		rev, err := s.kv.Update(ctx, k, mine, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("nats: claim %q: %w", key, err)
		}
		s.remember(key, owner, rev, deadline)
		return driver.Claimed, nil
	}
	// Others kept writing the key: one of them holds it.
	return driver.Busy, nil
}

// held returns the revision of key's record when owner holds it: the one
// this store wrote, else the one it reads.
func (s *claimStore) held(ctx context.Context, op, key, owner string) (uint64, error) {
	notHeld := fmt.Errorf("nats: %s claim %q: %w", op, key, driver.ErrClaimNotHeld)
	if h, ok := s.mine.Load(heldKey{key, owner}); ok {
		if r := h.(heldRecord); s.now().Before(r.deadline) {
			return r.rev, nil
		}
		s.mine.Delete(heldKey{key, owner})
		return 0, notHeld
	}
	e, err := s.kv.Get(ctx, claimKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, notHeld
	}
	if err != nil {
		return 0, fmt.Errorf("nats: %s claim %q: %w", op, key, err)
	}
	r, ok := decodeClaim(e.Value())
	if !ok || r.done || r.owner != owner || !s.now().Before(r.deadline) {
		return 0, notHeld
	}
	return e.Revision(), nil
}

// write writes key's record at revision rev (held's): a revision mismatch
// means another owner wrote the key since, and owner no longer holds it.
func (s *claimStore) write(ctx context.Context, op, key, owner string, rev uint64, r claimRecord) error {
	hk := heldKey{key, owner}
	var err error
	var next uint64
	if op == "release" {
		err = s.kv.Delete(ctx, claimKey(key), jetstream.LastRevision(rev))
	} else {
		next, err = s.kv.Update(ctx, claimKey(key), r.encode(), rev)
	}
	switch {
	case err == nil && op == "extend":
		s.mine.Store(hk, heldRecord{next, r.deadline})
		return nil
	case err == nil:
		s.mine.Delete(hk)
		return nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		s.mine.Delete(hk)
		return fmt.Errorf("nats: %s claim %q: %w", op, key, driver.ErrClaimNotHeld)
	}
	return fmt.Errorf("nats: %s claim %q: %w", op, key, err)
}

func (s *claimStore) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	rev, err := s.held(ctx, "extend", key, owner)
	if err != nil {
		return err
	}
	return s.write(ctx, "extend", key, owner, rev, claimRecord{owner: owner, deadline: s.now().Add(lease)})
}

func (s *claimStore) Complete(ctx context.Context, key, owner string) error {
	rev, err := s.held(ctx, "complete", key, owner)
	if err != nil {
		return err
	}
	return s.write(ctx, "complete", key, owner, rev, claimRecord{owner: owner, done: true})
}

func (s *claimStore) Release(ctx context.Context, key, owner string) error {
	rev, err := s.held(ctx, "release", key, owner)
	if err != nil {
		return err
	}
	return s.write(ctx, "release", key, owner, rev, claimRecord{})
}

var _ driver.Claimer = (*Conn)(nil)
