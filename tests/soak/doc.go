// Package soak holds gossip's bounded soak test: on each transport,
// publishers and a consumer group keep working through a server restart
// and a server frozen for 5 seconds (SIGSTOP), and the test counts what
// Publish confirmed against what the handlers saw. Nothing confirmed may be
// lost; after Shutdown the goroutines and the heap are back to where they
// were. Redis and NATS run as server processes the test starts itself on
// free loopback ports (redis-server, nats-server), so they can be killed and
// stopped; the test skips a transport whose binary is missing.
//
// It runs in `make test`; `make soak` runs it alone, verbose. -short skips
// it. docs/operations.md describes what it proves.
package soak
