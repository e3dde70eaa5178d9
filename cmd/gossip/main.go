// Command gossip is a command-line client for gossip event buses, for the
// engineer on call: publish an event, tail events, list, show, replay and
// purge the dead letters a transport stores, report each consumer group's
// lag, and measure a transport. docs/cli.md describes every command.
//
//	gossip publish --driver nats://127.0.0.1:4222 --type user_service.user.created --data '{"name":"Alice"}'
//	gossip tail 'user_service.>' --group ops -n 10 -o json
//	gossip deadletters list --group email_service --older-than 1h
//	gossip deadletters replay --type 'user_service.>' --error timeout --dry-run
//	gossip lag
//	gossip bench -n 20000
//	source <(gossip completion bash)
//
// Flags may come before or after the positional arguments. The driver comes
// from --driver or GOSSIP_DRIVER. Exit status: 0 success, 1 an error, 2 a
// usage error.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
