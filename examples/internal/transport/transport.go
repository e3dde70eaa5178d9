// Package transport turns an example's -driver flag into a gossip
// Config.Driver value, so that every example runs on every transport:
// "memory" (the default), "nats" (an embedded NATS server started in
// process, so nothing needs installing), "redis" (Redis on 127.0.0.1:6379),
// or any URL a driver accepts.
//
// The embedded NATS server is built only with -tags embeddednats (make
// demo-nats passes it): linking nats-server costs a cold build minutes,
// which an example run on memory or on a server of its own does not need.
package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	_ "github.com/gossipbus/gossip/drivers/nats"  // registers nats://
	_ "github.com/gossipbus/gossip/drivers/redis" // registers redis:// and rediss://
)

// Resolve returns the Config.Driver value for flag and a func that releases
// what Resolve started. memoryName names the in-process broker the
// example's buses share.
func Resolve(flag, memoryName string) (dsn string, stop func(), err error) {
	// go-redis prints its connection pool's complaints to stderr; the
	// driver's own error says the same in one line, so they go to slog's
	// debug level instead.
	goredis.SetLogger(slogPrintf{})
	switch flag {
	case "", "memory":
		return "memory://" + memoryName, func() {}, nil
	case "nats":
		if StartEmbeddedNATS == nil {
			return "", nil, errors.New("-driver nats: the embedded NATS server is built only with -tags embeddednats " +
				"(go run -tags embeddednats ./examples/<example> -driver nats; make demo-nats); " +
				"or give a server's URL: -driver nats://127.0.0.1:4222")
		}
		url, stop, err := StartEmbeddedNATS()
		if err != nil {
			return "", nil, fmt.Errorf("start an embedded NATS server: %w", err)
		}
		return url, stop, nil
	case "redis":
		return "redis://127.0.0.1:6379/0", func() {}, nil
	}
	return flag, func() {}, nil
}

// StartEmbeddedNATS starts a NATS server in process and returns its URL and
// how to stop it; nil unless built with -tags embeddednats (or set by a
// test that links the server anyway).
var StartEmbeddedNATS func() (url string, stop func(), err error)

// Name is the transport's name in a Config.Driver value: "memory", "nats",
// "redis".
func Name(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		return dsn[:i]
	}
	return dsn
}

type slogPrintf struct{}

func (slogPrintf) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, fmt.Sprintf(format, v...), "source", "go-redis")
}
