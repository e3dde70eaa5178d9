package driver

import (
	"context"
	"errors"
	"time"
)

// Claimer is implemented by connections whose transport can keep claims: a
// small shared store of keys, each held by one owner for a lease, then
// either released or marked done for a retention period. gossip builds
// idempotent handlers on it (middleware.Idempotent), and may build other
// coordination on it (a single active member holding one key with Claim,
// Extend and Release, never Complete).
//
// A Conn without it has no claim store: gossip.EventBus.Claims returns an
// error wrapping ErrClaimsUnsupported.
type Claimer interface {
	// Claims opens the claim store called name: 1 to 64 bytes of ASCII
	// letters, digits, '_' and '-' (gossip checks it). Stores of the same
	// name on connections to the same transport and namespace (the same
	// Redis prefix, NATS stream prefix, named memory broker) are one store,
	// shared by every process using it; stores of other names never share
	// keys. retention (positive) is how long a key stays done after
	// Complete; a transport may keep it a little longer, never shorter.
	// Claims may create what the store needs on the server (a JetStream
	// bucket) and must return within ctx's deadline. It may be called
	// concurrently and more than once for one name.
	Claims(ctx context.Context, name string, retention time.Duration) (Claims, error)
}

// ClaimState is what Claim found or made.
type ClaimState int

const (
	// Claimed: the caller holds the key until its lease ends, or until it
	// calls Complete or Release. The key was free, its last lease had
	// ended, or the caller already held it (Claim then renewed the lease).
	Claimed ClaimState = iota + 1
	// Busy: another owner holds the key and its lease has not ended.
	Busy
	// Done: an owner completed the key within the retention period.
	Done
)

// String is the state's name: "claimed", "busy" or "done".
func (s ClaimState) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case Busy:
		return "busy"
	case Done:
		return "done"
	}
	return "unknown"
}

// Claims is one claim store. Its methods may be called concurrently, from
// any number of processes; each is one atomic step on the transport
// (compare-and-set on the owner), so an owner whose lease ended and was
// taken over can neither extend, complete nor release the new owner's
// claim. Keys are any non-empty strings up to 1024 bytes; owners are
// non-empty strings up to 256 bytes that the caller makes unique per
// holder (gossip checks both). Leases are positive and at most the store's
// retention. Deadlines are read from the clock of the process that writes
// them; clocks of the members should agree to well within a lease.
//
// An error other than ErrClaimNotHeld means the transport could not be
// asked (unreachable, timed out, refused): the caller cannot know the
// key's state and must not act as if it had one.
type Claims interface {
	// Claim tries to take key for owner for lease. It returns Claimed when
	// owner now holds it, Busy when another owner holds an unexpired
	// lease, Done when the key was completed within the retention period.
	Claim(ctx context.Context, key, owner string, lease time.Duration) (ClaimState, error)

	// Extend gives owner's claim on key a new lease from now. It returns
	// an error wrapping ErrClaimNotHeld when owner does not hold key: its
	// lease ended (whether or not another owner has taken it since), it
	// was released or completed.
	Extend(ctx context.Context, key, owner string, lease time.Duration) error

	// Complete marks key done for the store's retention: later Claims
	// return Done until then. It returns an error wrapping ErrClaimNotHeld
	// when owner does not hold key.
	Complete(ctx context.Context, key, owner string) error

	// Release frees owner's claim on key at once: the next Claim takes it.
	// It returns an error wrapping ErrClaimNotHeld when owner does not hold
	// key.
	Release(ctx context.Context, key, owner string) error
}

// ErrClaimsUnsupported is wrapped by the error of a transport without a
// claim store (a Conn that is not a Claimer, or NATS core mode on a server
// without JetStream). gossip.ErrClaimsUnsupported is the same value.
var ErrClaimsUnsupported = errors.New("gossip: this transport has no claim store")

// ErrClaimNotHeld is wrapped by the error of Extend, Complete and Release
// when the owner does not hold the key. gossip.ErrClaimNotHeld is the same
// value.
var ErrClaimNotHeld = errors.New("gossip: claim not held by this owner")
