package redis

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeServer answers commands through go-redis hooks, without a server:
// every command's reply is its second argument, "fail" keys fail. The
// first round trip waits for release.
type fakeServer struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	trips   [][]string // the keys of each round trip's commands
}

func (f *fakeServer) answer(cmds []goredis.Cmder) {
	first := false
	f.once.Do(func() { first = true })
	if first {
		close(f.entered)
		<-f.release
	}
	keys := make([]string, len(cmds))
	for i, cmd := range cmds {
		key := cmd.Args()[1].(string)
		keys[i] = key
		if key == "fail" {
			cmd.SetErr(errors.New("ERR failed"))
		} else {
			cmd.(*goredis.StringCmd).SetVal(key)
		}
	}
	f.mu.Lock()
	f.trips = append(f.trips, keys)
	f.mu.Unlock()
}

func (f *fakeServer) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (f *fakeServer) ProcessHook(goredis.ProcessHook) goredis.ProcessHook {
	return func(_ context.Context, cmd goredis.Cmder) error {
		f.answer([]goredis.Cmder{cmd})
		return cmd.Err()
	}
}
func (f *fakeServer) ProcessPipelineHook(goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(_ context.Context, cmds []goredis.Cmder) error {
		f.answer(cmds)
		return nil
	}
}

// Calls that arrive while a round trip is under way go out together in the
// next one; each caller gets its own commands' results; a caller whose ctx
// ends while queued withdraws, and its commands are never sent.
func TestPipelinerCoalescesCalls(t *testing.T) {
	f := &fakeServer{entered: make(chan struct{}), release: make(chan struct{})}
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	client.AddHook(f)
	p := &pipeliner{client: client}
	cmd := func(key string) []goredis.Cmder {
		return []goredis.Cmder{goredis.NewStringCmd(context.Background(), "get", key)}
	}

	// The leader goes alone, at once.
	lead := cmd("a")
	leadErr := make(chan error, 1)
	go func() { leadErr <- p.do(context.Background(), lead) }()
	<-f.entered

	// Followers queue behind it; one gives up while queued.
	b, c, fail := cmd("b"), cmd("c"), cmd("fail")
	var wg sync.WaitGroup
	for _, cmds := range [][]goredis.Cmder{b, c, fail} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, p.do(context.Background(), cmds))
		}()
	}
	queued := func(n int) {
		for {
			p.mu.Lock()
			l := len(p.queue)
			p.mu.Unlock()
			if l == n {
				return
			}
			runtime.Gosched()
		}
	}
	queued(3)
	ctx, cancel := context.WithCancel(context.Background())
	gone := cmd("gone")
	goneErr := make(chan error, 1)
	go func() { goneErr <- p.do(ctx, gone) }()
	queued(4)
	cancel()
	require.ErrorIs(t, <-goneErr, context.Canceled)
	queued(3)

	close(f.release)
	require.NoError(t, <-leadErr)
	wg.Wait()
	assert.Equal(t, "a", lead[0].(*goredis.StringCmd).Val())
	assert.Equal(t, "b", b[0].(*goredis.StringCmd).Val())
	assert.Equal(t, "c", c[0].(*goredis.StringCmd).Val())
	assert.NoError(t, cmdsErr(b))
	assert.ErrorContains(t, cmdsErr(fail), "ERR failed")
	assert.NoError(t, gone[0].Err(), "a withdrawn call's command is never sent")
	assert.Empty(t, gone[0].(*goredis.StringCmd).Val())
	f.mu.Lock()
	trips := f.trips
	f.mu.Unlock()
	require.Len(t, trips, 2, "two round trips: the leader's, then every follower's")
	assert.Equal(t, []string{"a"}, trips[0])
	assert.ElementsMatch(t, []string{"b", "c", "fail"}, trips[1])

	// Idle again: the next caller leads at once.
	d := cmd("d")
	require.NoError(t, p.do(context.Background(), d))
	assert.Equal(t, "d", d[0].(*goredis.StringCmd).Val())
}
