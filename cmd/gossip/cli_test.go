package main

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

func TestFlagsAnywhereAmongArguments(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		pos   []string
		group string
		n     int
	}{
		{[]string{"order.>", "--group", "ops"}, []string{"order.>"}, "ops", 0},
		{[]string{"-group", "ops", "order.>", "-n", "1"}, []string{"order.>"}, "ops", 1},
		{[]string{"a", "-n=2", "b"}, []string{"a", "b"}, "", 2},
		{[]string{"-n", "3", "--", "-group", "x"}, []string{"-group", "x"}, "", 3},
		{[]string{"a", "--", "b"}, []string{"a", "b"}, "", 0},
	} {
		c := &cli{name: "tail"}
		fs := c.flags()
		group := fs.String("group", "", "")
		n := fs.Int("n", 0, "")
		pos, err := c.parse(tc.args)
		require.NoError(t, err, tc.args)
		assert.Equal(t, tc.pos, pos, tc.args)
		assert.Equal(t, tc.group, *group, tc.args)
		assert.Equal(t, tc.n, *n, tc.args)
	}
}

func TestExitStatusTellsScriptsWhatHappened(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, exitUsage, "", "usage: gossip <command>"},
		{[]string{"--help"}, exitOK, "usage: gossip <command>", ""},
		{[]string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{[]string{"tail", "--help"}, exitOK, "usage: gossip tail <pattern>", ""},
		{[]string{"deadletters", "replay", "-h"}, exitOK, "--max-replays", ""},
		{[]string{"groups", "--help"}, exitOK, "PENDING", ""},
		{[]string{"tail"}, exitUsage, "", "want one pattern"},
		{[]string{"tail", "a.>", "--bogus"}, exitUsage, "", "flag provided but not defined: -bogus"},
		{[]string{"tail", "a.>", "-o", "yaml"}, exitUsage, "", "want text or json"},
		{[]string{"publish", "--type", "a.b", "--data", "{", "--driver", "memory"}, exitUsage, "", "not valid JSON"},
		{[]string{"deadletters"}, exitUsage, "", "want a subcommand"},
		{[]string{"deadletters", "list", "--driver", "memory"}, exitError, "", "stores nothing"},
		{[]string{"lag", "--driver", "memory"}, exitError, "", "stores nothing"},
		{[]string{"publish", "--type", "a.b", "--driver", "nope://x"}, exitUsage, "", "nope"},
		{[]string{"completion", "bash"}, exitOK, "complete -o default -F _gossip gossip", ""},
		{[]string{"completion", "fish"}, exitUsage, "", "want 'bash'"},
	} {
		var out, errs bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errs)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, errs.String())
		assert.Contains(t, out.String(), tc.stdout, tc.args)
		assert.Contains(t, errs.String(), tc.stderr, tc.args)
	}
}

// `tail <pattern> --group ops -n 1` joins the group (it receives what the
// group missed while away, which a broadcast listener would not) and exits
// after one event.
func TestTailJoinsTheGroupNamedAfterThePatternAndStopsAfterN(t *testing.T) {
	driver := "memory://tail" + randomHex(t)
	away := newBus(t, driver)
	sub, err := away.Subscribe("order.>", func(context.Context, *gossip.Event) error { return nil }, gossip.Group("ops"))
	require.NoError(t, err)
	require.NoError(t, sub.Unsubscribe())
	var out, errs bytes.Buffer
	require.Equal(t, exitOK, run(context.Background(), []string{"publish", "--driver", driver, "--type", "order.created", "--data", `{"n":1}`}, &out, &errs), errs.String())
	require.Equal(t, exitOK, run(context.Background(), []string{"publish", "--type", "order.created", "--data", `{"n":2}`, "--driver", driver}, &out, &errs), errs.String())

	out.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, []string{"tail", "order.>", "--group", "ops", "-n", "1", "-o", "json", "--driver", driver}, &out, &errs)
	require.Equal(t, exitOK, code, errs.String())
	require.NoError(t, ctx.Err(), "tail -n 1 exits by itself")
	lines := decodeLines[eventLine](t, out.String())
	require.Len(t, lines, 1)
	assert.Equal(t, "order.created", lines[0].Type)
	assert.JSONEq(t, `{"n":1}`, string(lines[0].Data))
}

func TestBenchLeavesNothingStored(t *testing.T) {
	eachStoringTransport(t, func(t *testing.T, driver string) {
		var out, errs bytes.Buffer
		code := run(context.Background(), []string{"bench", "-n", "500", "--driver", driver}, &out, &errs)
		require.Equal(t, exitOK, code, errs.String())
		assert.Contains(t, out.String(), "500 events")
		assert.Empty(t, errs.String())
		u, err := url.Parse(driver)
		require.NoError(t, err)
		prefix := u.Query().Get("prefix")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if strings.HasPrefix(driver, "nats") {
			nc, err := nats.Connect(driver[:strings.IndexByte(driver, '?')])
			require.NoError(t, err)
			defer nc.Close()
			js, err := jetstream.New(nc)
			require.NoError(t, err)
			st, err := js.Stream(ctx, prefix)
			require.NoError(t, err)
			info, err := st.Info(ctx)
			require.NoError(t, err)
			assert.Zero(t, info.State.Msgs, "events left in stream %s", prefix)
			assert.Zero(t, info.State.Consumers, "consumers left on stream %s", prefix)
			return
		}
		opts, err := goredis.ParseURL(driver[:strings.IndexByte(driver, '?')])
		require.NoError(t, err)
		c := goredis.NewClient(opts)
		defer c.Close()
		var keys []string
		it := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for n := 0; it.Next(ctx) && n < 100; n++ {
			keys = append(keys, it.Val())
		}
		require.NoError(t, it.Err())
		assert.Empty(t, keys)
	})
}

// Reading what is stored creates nothing: on JetStream a prefix nothing
// was published under is an error, not a new empty stream.
func TestReadingCreatesNothing(t *testing.T) {
	eachStoringTransport(t, func(t *testing.T, driver string) {
		for _, args := range [][]string{{"deadletters", "list"}, {"lag"}} {
			var out, errs bytes.Buffer
			code := run(context.Background(), append(args, "--driver", driver), &out, &errs)
			if strings.HasPrefix(driver, "nats") {
				assert.Equal(t, exitError, code, args)
				assert.Contains(t, errs.String(), "not found", args)
			} else {
				assert.Equal(t, exitOK, code, "%v: %s", args, errs.String())
			}
		}
		u, err := url.Parse(driver)
		require.NoError(t, err)
		prefix := u.Query().Get("prefix")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if strings.HasPrefix(driver, "nats") {
			nc, err := nats.Connect(driver[:strings.IndexByte(driver, '?')])
			require.NoError(t, err)
			defer nc.Close()
			js, err := jetstream.New(nc)
			require.NoError(t, err)
			_, err = js.Stream(ctx, prefix)
			assert.ErrorIs(t, err, jetstream.ErrStreamNotFound)
			return
		}
		opts, err := goredis.ParseURL(driver[:strings.IndexByte(driver, '?')])
		require.NoError(t, err)
		c := goredis.NewClient(opts)
		defer c.Close()
		n, err := c.Exists(ctx, prefix+":types").Result()
		require.NoError(t, err)
		assert.Zero(t, n)
	})
}
