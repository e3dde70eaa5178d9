package gossip

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A member whose lease another owner took (its store lost the claim, or
// its clock ran ahead) stops handling at its next renewal, and stands by.
func TestExclusiveMemberThatLosesItsLeaseStandsBy(t *testing.T) {
	b, err := NewEventBus(&Config{Driver: "memory://exclusive-lost", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	defer b.Shutdown(context.Background())
	sub, err := b.Subscribe("lost.lease", func(context.Context, *Event) error { return nil },
		Group("g"), Exclusive(300*time.Millisecond))
	require.NoError(t, err)
	require.True(t, sub.Active())

	x := sub.ex
	ctx := context.Background()
	require.NoError(t, x.claims.Release(ctx, x.key, x.owner))
	state, err := x.claims.Claim(ctx, x.key, "thief", 24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, Claimed, state)
	require.Eventually(t, func() bool { return !sub.Active() }, 5*time.Second, 5*time.Millisecond,
		"the member stops handling once it cannot renew its lease")

	// It bids again and wins once the thief lets go.
	require.NoError(t, x.claims.Release(ctx, x.key, "thief"))
	require.Eventually(t, sub.Active, 5*time.Second, 5*time.Millisecond, "the member takes the free lease again")
}
