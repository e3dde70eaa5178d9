package gossip

import (
	"context"
	"testing"
	"time"
)

// A closing transport's context lasts while the caller's does, at most the
// limit, and a second's grace once the caller's has ended: also when it
// ends during the call.
func TestBoundedContext(t *testing.T) {
	t.Run("EndsAGraceAfterCtxEndsDuringTheCall", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c := boundedContext(ctx, time.Minute)
		cancel()
		ended := time.Now()
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the transport's context outlived the caller's by 10s (its limit is a minute)")
		}
		if d := time.Since(ended); d < graceAfterCtx/2 {
			t.Errorf("ended %v after the caller's context: no grace", d)
		}
	})
	t.Run("EndsAtTheLimit", func(t *testing.T) {
		c := boundedContext(context.Background(), 50*time.Millisecond)
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("did not end at its limit")
		}
	})
	t.Run("AnEndedCtxGetsTheGraceAlone", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c := boundedContext(ctx, time.Minute)
		dl, ok := c.Deadline()
		if !ok || time.Until(dl) > graceAfterCtx {
			t.Errorf("deadline %v, want within %v", dl, graceAfterCtx)
		}
	})
}
