package gossip_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

func newBus(t *testing.T, cfg *gossip.Config) *gossip.EventBus {
	t.Helper()
	b, err := gossip.NewEventBus(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Shutdown(context.Background())) })
	return b
}

func TestNewIDIsSortableUniqueUUIDv7(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	prev := ""
	seen := map[string]bool{}
	for range 20000 {
		id := gossip.NewID()
		require.Regexp(t, re, id)
		require.False(t, seen[id], "duplicate id %s", id)
		require.Greater(t, id, prev, "IDs sort in creation order")
		seen[id], prev = true, id
	}
}

func TestZeroConfigIsAnInProcessBus(t *testing.T) {
	b := newBus(t, &gossip.Config{})
	assert.Equal(t, "memory", b.Transport())
	got := make(chan string, 1)
	_, err := b.Subscribe("greeting.said", gossip.Typed(func(ctx context.Context, e *gossip.Event, s string) error {
		got <- s
		return nil
	}))
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("greeting.said", "hi")))
	select {
	case s := <-got:
		assert.Equal(t, "hi", s)
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
}

func TestUnknownDriverNamesRegisteredOnes(t *testing.T) {
	for _, d := range []string{"kafka", "kafka://broker:9092", "redis-typo"} {
		_, err := gossip.NewEventBus(&gossip.Config{Driver: d})
		require.ErrorIs(t, err, gossip.ErrUnknownDriver, d)
		assert.Contains(t, err.Error(), "memory", "the error lists registered drivers")
	}
	// An unparsable URL of an unregistered scheme is unknown too, without
	// its password.
	_, err := gossip.NewEventBus(&gossip.Config{Driver: "kafka://u:TOPSECRET%zz@host"})
	require.ErrorIs(t, err, gossip.ErrUnknownDriver)
	assert.NotContains(t, err.Error(), "TOPSECRET")
}

// An unparsable URL of a registered scheme is the driver's to explain: its
// error, not "unknown driver", and never the password.
func TestUnparsableURLOfAKnownDriverIsItsError(t *testing.T) {
	_, err := gossip.NewEventBus(&gossip.Config{Driver: "memory://u:TOPSECRET%zz@orders"})
	require.Error(t, err)
	assert.NotErrorIs(t, err, gossip.ErrUnknownDriver)
	assert.NotContains(t, err.Error(), "TOPSECRET")
}

func TestUnnamedMemoryBusesArePrivate(t *testing.T) {
	a, b := newBus(t, nil), newBus(t, nil)
	got := make(chan struct{}, 1)
	_, err := b.Subscribe("x.y", func(ctx context.Context, e *gossip.Event) error { got <- struct{}{}; return nil })
	require.NoError(t, err)
	marker := make(chan struct{}, 1)
	_, err = a.Subscribe("x.y", func(ctx context.Context, e *gossip.Event) error { marker <- struct{}{}; return nil })
	require.NoError(t, err)
	require.NoError(t, a.Publish(context.Background(), gossip.NewEvent("x.y", 1)))
	<-marker
	select {
	case <-got:
		t.Fatal("an unnamed memory bus saw another bus's event")
	default:
	}
}

// A full buffer makes Publish wait and return the ctx error; every event it
// accepted is handled.
func TestBackpressureFullBufferPublishWaitsNeverDrops(t *testing.T) {
	b := newBus(t, &gossip.Config{BufferSize: 4, Workers: 1})
	release := make(chan struct{})
	var handled atomic.Int64
	allHandled := make(chan struct{}, 1)
	var accepted atomic.Int64
	_, err := b.Subscribe("load.item", func(ctx context.Context, e *gossip.Event) error {
		<-release
		if handled.Add(1) == accepted.Load() {
			select {
			case allHandled <- struct{}{}:
			default:
			}
		}
		return nil
	})
	require.NoError(t, err)

	var rejected error
	for i := range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		err := b.Publish(ctx, gossip.NewEvent("load.item", i))
		cancel()
		if err != nil {
			rejected = err
			break
		}
		accepted.Add(1)
	}
	require.ErrorIs(t, rejected, context.DeadlineExceeded, "Publish on a full buffer returns the ctx error")
	// One event in the handler, four in the buffer: the sixth must wait.
	assert.Equal(t, int64(5), accepted.Load())
	close(release)
	select {
	case <-allHandled:
	case <-time.After(5 * time.Second):
		t.Fatalf("handled %d of %d accepted events", handled.Load(), accepted.Load())
	}
	assert.Equal(t, accepted.Load(), handled.Load(), "every accepted event handled, nothing more")
}

// Shutdown handles what the memory buffer still holds: Publish accepted it.
func TestShutdownHandlesBufferedEvents(t *testing.T) {
	b, err := gossip.NewEventBus(&gossip.Config{Workers: 1, BufferSize: 100})
	require.NoError(t, err)
	release := make(chan struct{})
	var handled atomic.Int64
	_, err = b.Subscribe("buf.x", func(ctx context.Context, e *gossip.Event) error {
		<-release
		handled.Add(1)
		return nil
	})
	require.NoError(t, err)
	for i := range 50 {
		require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("buf.x", i)))
	}
	close(release)
	require.NoError(t, b.Shutdown(context.Background()))
	assert.Equal(t, int64(50), handled.Load())
}

func TestChainRunsFirstOutermost(t *testing.T) {
	var order []string
	mw := func(name string) gossip.Middleware {
		return func(next gossip.Handler) gossip.Handler {
			return func(ctx context.Context, e *gossip.Event) error {
				order = append(order, name+">")
				err := next(ctx, e)
				order = append(order, "<"+name)
				return err
			}
		}
	}
	h := gossip.Chain(mw("a"), mw("b"))(func(ctx context.Context, e *gossip.Event) error {
		order = append(order, "h")
		return nil
	})
	require.NoError(t, h(context.Background(), gossip.NewEvent("a.b", nil)))
	assert.Equal(t, []string{"a>", "b>", "h", "<b", "<a"}, order)
}

func TestUseAndPublishMiddlewareRun(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	b := newBus(t, &gossip.Config{PublishMiddleware: []gossip.PublishMiddleware{
		func(next gossip.PublishFunc) gossip.PublishFunc {
			return func(ctx context.Context, events []*gossip.Event) error {
				for _, e := range events {
					e.WithMetadata("stamped", "yes")
				}
				return next(ctx, events)
			}
		},
	}})
	b.Use(func(next gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error {
			mu.Lock()
			seen = append(seen, e.Metadata["stamped"])
			mu.Unlock()
			return next(ctx, e)
		}
	})
	done := make(chan struct{})
	_, err := b.Subscribe("mw.x", func(ctx context.Context, e *gossip.Event) error { close(done); return nil })
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("mw.x", 1)))
	<-done
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"yes"}, seen)
}

func TestErrorTaxonomy(t *testing.T) {
	base := errors.New("boom")
	p := gossip.Permanent(base)
	assert.ErrorIs(t, p, base)
	assert.ErrorIs(t, p, gossip.ErrPermanent)
	assert.True(t, gossip.IsPermanent(fmt.Errorf("wrapped: %w", p)))
	assert.False(t, gossip.IsPermanent(base))
	assert.Nil(t, gossip.Permanent(nil))
	assert.Same(t, p, gossip.Permanent(p), "Permanent is idempotent")

	var dec *gossip.DecodeError
	e := gossip.NewEvent("a.b", "text")
	err := e.Decode(new(int))
	require.ErrorAs(t, err, &dec)
	assert.Equal(t, e.ID, dec.EventID)
	assert.ErrorIs(t, err, gossip.ErrDecode)
	assert.True(t, gossip.IsPermanent(err), "undecodable data is not worth retrying")

	h := gossip.Typed(func(ctx context.Context, e *gossip.Event, s string) error { panic(base) })
	b := newBus(t, nil)
	errs := make(chan *gossip.Event, 1)
	_, err = b.Subscribe(gossip.DeadLetterType("", "p.x"), func(ctx context.Context, e *gossip.Event) error { errs <- e; return nil })
	require.NoError(t, err)
	_, err = b.Subscribe("p.x", h, gossip.MaxDeliveries(1))
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("p.x", "s")))
	dl := <-errs
	info, ok := gossip.DeadLetterInfo(dl)
	require.True(t, ok)
	assert.Contains(t, info.Error, "panicked: boom", "a panic is an error carried to the dead letter")
}

func TestDecodeOnMemoryAssignsAndConverts(t *testing.T) {
	type user struct{ Name string }
	type other struct{ Name string }
	cases := []struct {
		name string
		data any
		into any
		want any
	}{
		{"same type", user{"a"}, new(user), user{"a"}},
		{"pointer to value", &user{"b"}, new(user), user{"b"}},
		{"value to pointer", user{"c"}, new(*user), &user{"c"}},
		{"other struct of the same shape", user{"d"}, new(other), other{"d"}},
		{"map", user{"e"}, new(map[string]any), map[string]any{"Name": "e"}},
		{"int64 beyond float precision", int64(1<<62 + 1), new(int64), int64(1<<62 + 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := gossip.NewEvent("a.b", c.data)
			require.NoError(t, e.Decode(c.into))
			assert.Equal(t, c.want, derefAny(c.into))
		})
	}
}

func derefAny(p any) any { return reflect.ValueOf(p).Elem().Interface() }

func TestDeadLetterTypeAndReplay(t *testing.T) {
	assert.Equal(t, gossip.EventType("dead_letter.email.user.created"), gossip.DeadLetterType("email", "user.created"))
	assert.Equal(t, gossip.EventType("dead_letter._.user.created"), gossip.DeadLetterType("", "user.created"))
	assert.NoError(t, gossip.DeadLetterType("g", "a.b").Validate())
}

func TestSubscribeManyAndGroupsOfPatterns(t *testing.T) {
	b := newBus(t, nil)
	got := make(chan gossip.EventType, 3)
	subs, err := b.SubscribeMany([]gossip.EventType{"a.one", "b.two"}, func(ctx context.Context, e *gossip.Event) error {
		got <- e.Type
		return nil
	})
	require.NoError(t, err)
	require.Len(t, subs, 2)
	require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("a.one", 1), gossip.NewEvent("c.three", 1), gossip.NewEvent("b.two", 1)))
	assert.ElementsMatch(t, []gossip.EventType{"a.one", "b.two"}, []gossip.EventType{<-got, <-got})
	_, err = b.SubscribeMany([]gossip.EventType{"ok.type", "bad..type"}, func(ctx context.Context, e *gossip.Event) error { return nil })
	require.ErrorIs(t, err, gossip.ErrInvalidEventType)
}

// A wildcard handler that fails on everything sees the event and its dead
// letter, and no dead letter of the dead letter: nothing nests without end.
func TestDeadLetterIsNotDeadLetteredAgain(t *testing.T) {
	b := newBus(t, &gossip.Config{RetryBackoff: time.Millisecond})
	seen := make(chan gossip.EventType, 100)
	_, err := b.Subscribe(">", func(ctx context.Context, e *gossip.Event) error {
		seen <- e.Type
		if e.Type == "m.marker" {
			return nil
		}
		return gossip.Permanent(errors.New("no"))
	}, gossip.Workers(1))
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("a.b", 1)))
	assert.Equal(t, gossip.EventType("a.b"), waitFor(t, seen))
	assert.Equal(t, gossip.DeadLetterType("", "a.b"), waitFor(t, seen))
	// One worker: once the marker is handled, a nested dead letter would have been too.
	require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("m.marker", 1)))
	for typ := waitFor(t, seen); typ != "m.marker"; typ = waitFor(t, seen) {
		assert.NotContains(t, string(typ), "dead_letter._.dead_letter", "a dead letter was dead-lettered again")
	}
	assert.Empty(t, seen)
}

func TestSubscribeRefusesOptionsOutOfRange(t *testing.T) {
	b := newBus(t, nil)
	h := func(context.Context, *gossip.Event) error { return nil }
	for name, opt := range map[string]gossip.SubscribeOption{
		"negative backoff":     gossip.RetryBackoff(-time.Second, -time.Millisecond),
		"zero backoff":         gossip.RetryBackoff(0, time.Second),
		"max below initial":    gossip.RetryBackoff(time.Second, time.Millisecond),
		"zero workers":         gossip.Workers(0),
		"too many workers":     gossip.Workers(1 << 20),
		"zero max deliveries":  gossip.MaxDeliveries(0),
		"huge max deliveries":  gossip.MaxDeliveries(1 << 30),
		"backoff over the cap": gossip.RetryBackoff(time.Second, 48*time.Hour),
	} {
		_, err := b.Subscribe("a.b", h, opt)
		assert.ErrorIs(t, err, gossip.ErrInvalidOption, name)
	}
}
