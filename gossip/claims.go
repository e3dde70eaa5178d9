package gossip

import (
	"context"
	"fmt"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// ClaimState is what ClaimStore.Claim found or made.
type ClaimState = driver.ClaimState

// The states of a claim.
const (
	// Claimed: the caller holds the key until its lease ends.
	Claimed = driver.Claimed
	// Busy: another owner holds the key and its lease has not ended.
	Busy = driver.Busy
	// Done: the key was completed within the store's retention.
	Done = driver.Done
)

var (
	// ErrClaimsUnsupported is returned by EventBus.Claims on a transport
	// without a claim store.
	ErrClaimsUnsupported = driver.ErrClaimsUnsupported
	// ErrClaimNotHeld is wrapped by ClaimStore's Extend, Complete and
	// Release when the owner does not hold the key (any more).
	ErrClaimNotHeld = driver.ErrClaimNotHeld
)

// ClaimStore is a store of claims kept by the bus's transport: keys each
// held by one owner for a lease, then released or marked done for the
// store's retention. Every bus on the same transport and namespace that
// opens a store of the same name shares it, across processes and restarts
// (memory: the buses of one named broker). Each method is one atomic step,
// checked against the owner, so a holder whose lease ended cannot touch the
// claim of the one that took over. middleware.Idempotent runs handlers at
// most once per key on it.
//
// An error other than one wrapping ErrClaimNotHeld (or ErrInvalidOption
// for bad arguments) means the transport could not be asked: the state of
// the key is unknown.
type ClaimStore interface {
	// Claim takes key for owner for lease, or renews owner's lease. It
	// returns Claimed when owner holds key, Busy when another owner holds
	// an unexpired lease, Done when key was completed within retention.
	Claim(ctx context.Context, key, owner string, lease time.Duration) (ClaimState, error)
	// Extend gives owner's claim a new lease from now, or fails with
	// ErrClaimNotHeld.
	Extend(ctx context.Context, key, owner string, lease time.Duration) error
	// Complete marks key done for the store's retention, or fails with
	// ErrClaimNotHeld.
	Complete(ctx context.Context, key, owner string) error
	// Release frees owner's claim at once, or fails with ErrClaimNotHeld.
	Release(ctx context.Context, key, owner string) error
}

// Ranges of the claim store's arguments.
const (
	maxClaimStoreName = 64
	maxClaimKey       = 1024
	maxClaimOwner     = 256
	maxRetention      = 10 * 365 * 24 * time.Hour
)

// Claims opens the claim store called name on the bus's transport: 1 to 64
// ASCII letters, digits, '_' and '-'. Name it after the work it guards
// ("billing-charge"): stores of other names share no keys. retention, 1ms
// to 10 years, is how long a completed key stays done; every lease given to
// the store must be at most retention (on NATS a claim record lives at most
// retention after its last write).
//
// The memory transport keeps claims in the broker (shared by the buses of
// one named broker), Redis in keys under the bus's prefix
// ("<prefix>:claims:<name>:<key>"), NATS in a JetStream key-value bucket
// per name. A transport without a store returns an error wrapping
// ErrClaimsUnsupported.
func (b *EventBus) Claims(ctx context.Context, name string, retention time.Duration) (ClaimStore, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if err := validClaimStoreName(name); err != nil {
		return nil, err
	}
	if retention < time.Millisecond || retention > maxRetention {
		return nil, fmt.Errorf("%w: claim store retention %v out of range (1ms to %v)", ErrInvalidOption, retention, maxRetention)
	}
	c, ok := b.conn.(driver.Claimer)
	if !ok {
		return nil, fmt.Errorf("%w (%s)", ErrClaimsUnsupported, b.Transport())
	}
	s, err := c.Claims(ctx, name, retention)
	if err != nil {
		return nil, err
	}
	return &claimStore{c: s, retention: retention}, nil
}

func validClaimStoreName(name string) error {
	if name == "" || len(name) > maxClaimStoreName {
		return fmt.Errorf("%w: claim store name of %d bytes (1 to %d)", ErrInvalidOption, len(name), maxClaimStoreName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: claim store name %q: only ASCII letters, digits, '_' and '-'", ErrInvalidOption, name)
		}
	}
	return nil
}

// claimStore checks the arguments before the transport sees them.
type claimStore struct {
	c         driver.Claims
	retention time.Duration
}

func (s *claimStore) check(key, owner string) error {
	if key == "" || len(key) > maxClaimKey {
		return fmt.Errorf("%w: claim key of %d bytes (1 to %d)", ErrInvalidOption, len(key), maxClaimKey)
	}
	if owner == "" || len(owner) > maxClaimOwner {
		return fmt.Errorf("%w: claim owner of %d bytes (1 to %d)", ErrInvalidOption, len(owner), maxClaimOwner)
	}
	return nil
}

func (s *claimStore) checkLease(lease time.Duration) error {
	if lease < time.Millisecond || lease > s.retention {
		return fmt.Errorf("%w: claim lease %v out of range (1ms to the store's retention, %v)", ErrInvalidOption, lease, s.retention)
	}
	return nil
}

func (s *claimStore) Claim(ctx context.Context, key, owner string, lease time.Duration) (ClaimState, error) {
	if err := s.check(key, owner); err != nil {
		return 0, err
	}
	if err := s.checkLease(lease); err != nil {
		return 0, err
	}
	return s.c.Claim(ctx, key, owner, lease)
}

func (s *claimStore) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	if err := s.check(key, owner); err != nil {
		return err
	}
	if err := s.checkLease(lease); err != nil {
		return err
	}
	return s.c.Extend(ctx, key, owner, lease)
}

func (s *claimStore) Complete(ctx context.Context, key, owner string) error {
	if err := s.check(key, owner); err != nil {
		return err
	}
	return s.c.Complete(ctx, key, owner)
}

func (s *claimStore) Release(ctx context.Context, key, owner string) error {
	if err := s.check(key, owner); err != nil {
		return err
	}
	return s.c.Release(ctx, key, owner)
}
