package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the tests run this program: the test binary, started again
// with GOSSIP_EXAMPLE_MAIN=1, is the example itself.
func TestMain(m *testing.M) {
	if os.Getenv("GOSSIP_EXAMPLE_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runDemo runs the example with args and returns what it printed.
func runDemo(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^$"}, args...)...)
	cmd.Env = append(os.Environ(), "GOSSIP_EXAMPLE_MAIN=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the demo exits 0; it printed:\n%s", out)
	return string(out)
}

// The demo tells the same story on every transport: the welcome emails,
// notifications and analytics for alice and bob.
func TestDemoTellsTheSameStoryOnEveryTransport(t *testing.T) {
	redisURL := os.Getenv("GOSSIP_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	transports := map[string][]string{
		"memory": nil,
		"nats":   {"-driver", "nats"}, // an embedded server
	}
	if os.Getenv("CI") != "" || redisUp() {
		// A key prefix of the test's own: no earlier run's events.
		prefix := fmt.Sprintf("demotest%d", time.Now().UnixNano())
		transports["redis"] = []string{"-driver", redisURL + "?prefix=" + prefix}
		t.Cleanup(func() { deleteKeys(t, redisURL, prefix) })
	} else {
		t.Log("no Redis on 127.0.0.1:6379 and GOSSIP_REDIS_URL unset: the demo runs on memory and nats only")
	}
	want := storyLines
	for name, args := range transports {
		t.Run(name, func(t *testing.T) {
			out := runDemo(t, args...)
			for _, line := range want {
				assert.Equal(t, 1, strings.Count(out, line), "once: %q in\n%s", line, out)
			}
		})
	}
}

func deleteKeys(t *testing.T, url, prefix string) {
	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	require.NoError(t, iter.Err())
}

func redisUp() bool {
	cmd := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping")
	out, err := cmd.Output()
	return err == nil && strings.TrimSpace(string(out)) == "PONG"
}

// storyLines are what every run of the demo prints, in some order: each
// service's part of the story.
var storyLines = []string{
	"[email_service]        welcome email sent to Alice <alice@example.com>",
	"[email_service]        welcome email sent to Bob <bob@example.com>",
	"[notification_service] push notification: Alice just joined",
	"[notification_service] push notification: Bob just joined",
	"[analytics_service]    tracked user_service.user.created: user u1-",
	"[analytics_service]    tracked user_service.user.created: user u2-",
	"[analytics_service]    tracked user_service.user.updated: user u1-",
	"[analytics_service]    tracked email_service.email.sent: welcome email to alice@example.com",
	"[analytics_service]    tracked email_service.email.sent: welcome email to bob@example.com",
}
