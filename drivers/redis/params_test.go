package redis

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Every numeric URL parameter has a range checked at Open, before anything
// is dialled: the error names the parameter and its range.
func TestParamsOutOfRangeFailAtOpen(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"maxlen=0", "maxlen"},
		{"maxlen=-2", "maxlen -2 out of range (-1 to keep everything, or 1 to 1000000000)"},
		{"maxlen=99999999999", "maxlen 99999999999 out of range"},
		{"maxage=-1h", `bad maxage="-1h"`},
		{"maxage=0s", "maxage"},
		{"maxage=100000h", "maxage 100000h0m0s out of range (1s to 87600h0m0s)"},
		{"block=0s", "block"},
		{"block=-1s", "block"},
		{"block=2h", "block 2h0m0s out of range (1ms to 1m0s)"},
		{"claim_interval=1ns", "claim_interval 1ns out of range (10ms to 1h0m0s)"},
		{"claim_interval=-5s", "claim_interval"},
		{"refresh_interval=1000h", "refresh_interval 1000h0m0s out of range (10ms to 24h0m0s)"},
		{"pool_size=1099511627776", "pool_size"},
		{"pool_size=0", "bad pool_size=\"0\" in redis://127.0.0.1:1/0?pool_size=0: out of range (1 to 10000)"},
		{"min_idle_conns=-1", "min_idle_conns"},
		{"max_active_conns=1000000", "max_active_conns"},
		{"max_retries=1000", "max_retries"},
		{"protocol=9", "protocol"},
		{"dial_timeout=-1s", "dial_timeout"},
		{"dial_timeout=0", "dial_timeout"},
		{"dial_timeout=99999999999", "dial_timeout"},
		{"read_timeout=-5s", "read_timeout"},
		{"pool_timeout=10h", "pool_timeout"},
		{"max_retry_backoff=1h", "max_retry_backoff"},
		{"prefix=" + strings.Repeat("p", 300), "key prefix of 300 bytes (1 to 256)"},
		{"mode=fast", `unknown mode "fast"`},
		{"ack=maybe", `"maybe" is neither sync nor async`},
		{"dedup_window=0", "dedup_window"},
		{"dedup_window=200h", "dedup_window 200h0m0s out of range (1ms to 168h0m0s)"},
		{"dedup_window=1m&mode=pubsub", "dedup_window works in Streams mode only"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err := Driver{}.Open(ctx, "redis://127.0.0.1:1/0?"+tc.query, driver.Options{Logger: discardLogger()})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "connect to", "checked before dialling")
			assert.Less(t, time.Since(start), time.Second)
		})
	}
}

// Values in range, and the special values, are accepted.
func TestParamsInRange(t *testing.T) {
	for _, query := range []string{
		"maxlen=-1", "maxlen=1", "maxage=1s", "block=1ms", "block=1m", "claim_interval=10ms", "refresh_interval=24h",
		"pool_size=10000", "max_retries=-1", "read_timeout=-1", "read_timeout=-2", "read_timeout=3", "dial_timeout=5m",
		"conn_max_idle_time=-1", "protocol=2", "ack=sync", "ack=ASYNC",
	} {
		o := defaultOptions()
		c, _, err := parseURL("redis://127.0.0.1:1/0?"+query, &o)
		if assert.NoError(t, err, query) {
			assert.NoError(t, o.validate(), query)
			_ = c.Close()
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
