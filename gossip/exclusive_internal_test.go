package gossip

import (
	"context"
	"io"
	"log/slog"
	"sync"
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

// A leaving member keeps its lease until its running handlers are done: no
// standby becomes active while they run, however long past a lease that is.
func TestExclusiveLeavingMemberKeepsTheLeaseUntilItsHandlersEnd(t *testing.T) {
	cfg := &Config{Driver: "memory://exclusive-leaving", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	first, err := NewEventBus(cfg)
	require.NoError(t, err)
	defer first.Shutdown(context.Background())
	second, err := NewEventBus(cfg)
	require.NoError(t, err)
	defer second.Shutdown(context.Background())

	const lease = 300 * time.Millisecond
	running, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	releaseHandler := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseHandler() // before the buses shut down, also when the test fails
	a, err := first.Subscribe("leaving.slow", func(context.Context, *Event) error {
		close(running)
		<-release
		return nil
	}, Group("g"), Exclusive(lease))
	require.NoError(t, err)
	b, err := second.Subscribe("leaving.slow", func(context.Context, *Event) error { return nil }, Group("g"), Exclusive(lease))
	require.NoError(t, err)
	require.True(t, a.Active())

	require.NoError(t, first.Publish(context.Background(), NewEvent("leaving.slow", 1)))
	<-running
	require.NoError(t, a.Unsubscribe())
	// Observation window: three leases, in which b must stay a standby.
	window := time.NewTimer(3 * lease)
	defer window.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
watch:
	for {
		select {
		case <-window.C:
			break watch
		case <-poll.C:
			require.False(t, b.Active(), "a standby took over while the leaving member's handler ran")
		}
	}
	releaseHandler()
	<-a.Done()
	require.Eventually(t, b.Active, 5*time.Second, 5*time.Millisecond, "the standby takes over once the handler ended")
}
