package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain lets the test run this program: the test binary, started again
// with GOSSIP_EXAMPLE_MAIN=1 (or as the example's own child), is the
// example itself.
func TestMain(m *testing.M) {
	if os.Getenv("GOSSIP_EXAMPLE_MAIN") == "1" || os.Getenv(childEnv) != "" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// The example's story on a fresh machine (SQLite in a temporary
// directory, the memory bus): the order service is killed after its
// commit; after its restart the event is handled, the relay dies before
// marking it sent, the next relay sends it again, and the idempotency
// middleware drops the copy: shipped once.
func TestKilledServiceEventGoesOutOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GOSSIP_EXAMPLE_MAIN=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the example exits 0; it printed:\n%s", out)
	for _, line := range []string{
		"[order_service]    killed (SIGKILL) after the commit, before its relay published",
		": 1 row; outbox: 1 event pending",
		"[shipping_service] shipping a teapot for order o-",
		"the service died before marking it sent",
		"delivered again: dropped by the idempotency middleware, not shipped twice",
		"[database]         outbox: 0 events pending: event ",
		" was delivered twice and handled once",
	} {
		assert.Equal(t, 1, strings.Count(string(out), line), "once: %q in\n%s", line, out)
	}
}
