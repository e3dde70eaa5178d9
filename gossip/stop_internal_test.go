package gossip

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A handler that fails after its subscription stopped, once the other
// workers have seen the end of the deliveries (and closed the retries
// channel), has its event retried by its own worker (in process, the
// buffered events are handled before the subscription stops), not sent
// on the closed channel.
func TestInProcessRetryAfterStopRunsOnItsWorker(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "OrderedByKey"}[ordered], func(t *testing.T) {
			b, err := NewEventBus(&Config{RetryBackoff: time.Millisecond, MaxRetryBackoff: time.Millisecond})
			require.NoError(t, err)
			defer b.Shutdown(context.Background())
			in, release := make(chan struct{}), make(chan struct{})
			handled := make(chan int, 1)
			opts := []SubscribeOption{Workers(2)}
			if ordered {
				opts = append(opts, OrderedByKey())
			}
			sub, err := b.Subscribe("stop.retry", func(ctx context.Context, e *Event) error {
				if e.Attempt() == 1 {
					close(in)
					<-release
					return errors.New("fails once")
				}
				handled <- e.Attempt()
				return nil
			}, opts...)
			require.NoError(t, err)
			require.NoError(t, b.Publish(context.Background(), NewEvent("stop.retry", 1).WithKey("k")))
			<-in
			require.NoError(t, sub.Unsubscribe())
			require.Eventually(t, func() bool { // the other worker saw the end
				sub.redelive.mu.Lock()
				defer sub.redelive.mu.Unlock()
				return sub.redelive.chDone
			}, 10*time.Second, time.Millisecond)
			close(release)
			select {
			case n := <-handled:
				assert.Equal(t, 2, n, "retried once, by the worker that ran it")
			case <-time.After(10 * time.Second):
				require.FailNow(t, "the retry never ran")
			}
			<-sub.Done()
		})
	}
}
