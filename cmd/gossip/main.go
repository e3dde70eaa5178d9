// Command gossip is a command-line client for gossip event buses: publish an
// event, tail events as JSON lines, watch and replay dead letters, and
// measure a transport.
//
//	gossip publish -driver nats://127.0.0.1:4222 -type user_service.user.created -data '{"name":"Alice"}' -meta tenant=acme
//	gossip tail -driver redis://127.0.0.1:6379/0 'user_service.>'
//	gossip deadletters -driver nats://127.0.0.1:4222 [-group email_service] [-replay]
//	gossip bench -driver nats://127.0.0.1:4222 -n 20000
//
// The driver also comes from GOSSIP_DRIVER.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/gossipbus/gossip/drivers/nats"
	_ "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
)

const usage = `usage: gossip <command> [flags]

commands:
  publish      publish one event
  tail         print events matching a pattern as JSON lines
  deadletters  print dead letters (and replay them with -replay)
  bench        publish and handle N events, print the throughput

run 'gossip <command> -h' for the flags of a command`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "publish":
		err = publish(ctx, os.Args[2:])
	case "tail":
		err = tail(ctx, os.Args[2:], false)
	case "deadletters":
		err = tail(ctx, os.Args[2:], true)
	case "bench":
		err = bench(ctx, os.Args[2:])
	case "-h", "-help", "--help", "help":
		fmt.Println(usage)
	default:
		fmt.Fprintf(os.Stderr, "gossip: unknown command %q\n%s\n", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gossip:", err)
		os.Exit(1)
	}
}

type common struct {
	fs     *flag.FlagSet
	driver *string
	source *string
}

func newFlags(name string) common {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	def := os.Getenv("GOSSIP_DRIVER")
	if def == "" {
		def = "nats://127.0.0.1:4222"
	}
	return common{
		fs:     fs,
		driver: fs.String("driver", def, "transport URL (env GOSSIP_DRIVER)"),
		source: fs.String("source", "gossip-cli", "the Source of published events"),
	}
}

func (c common) open(workers int) (*gossip.EventBus, error) {
	return gossip.NewEventBus(&gossip.Config{
		Driver: *c.driver, Source: *c.source, Workers: workers,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

type metaFlag map[string]string

func (m metaFlag) String() string { return fmt.Sprint(map[string]string(m)) }
func (m metaFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	m[k] = v
	return nil
}

func publish(ctx context.Context, args []string) error {
	c := newFlags("publish")
	typ := c.fs.String("type", "", "event type (required)")
	data := c.fs.String("data", "null", "JSON data, or @file to read it from a file, or - for stdin")
	meta := metaFlag{}
	c.fs.Var(meta, "meta", "metadata key=value (repeatable)")
	_ = c.fs.Parse(args)
	if *typ == "" {
		return errors.New("publish: -type is required")
	}
	raw, err := readData(*data)
	if err != nil {
		return err
	}
	if !json.Valid(raw) {
		return fmt.Errorf("publish: -data is not valid JSON: %s", raw)
	}
	bus, err := c.open(1)
	if err != nil {
		return err
	}
	defer bus.Shutdown(context.Background())
	e := gossip.NewEvent(gossip.EventType(*typ), json.RawMessage(raw))
	for k, v := range meta {
		e.WithMetadata(k, v)
	}
	if err := bus.Publish(ctx, e); err != nil {
		return err
	}
	fmt.Println(e.ID)
	return nil
}

func readData(s string) ([]byte, error) {
	switch {
	case s == "-":
		return io.ReadAll(os.Stdin)
	case strings.HasPrefix(s, "@"):
		return os.ReadFile(s[1:])
	}
	return []byte(s), nil
}

// line is how tail prints an event.
type line struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Source    string            `json:"source"`
	Time      time.Time         `json:"time"`
	Attempt   int               `json:"attempt"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Data      json.RawMessage   `json:"data"`
	DataError string            `json:"data_error,omitempty"`
}

func tail(ctx context.Context, args []string, dead bool) error {
	name := "tail"
	if dead {
		name = "deadletters"
	}
	c := newFlags(name)
	group := c.fs.String("group", "", "with tail: join this consumer group (durable); with deadletters: only this group's dead letters")
	replay := c.fs.Bool("replay", false, "deadletters: publish each dead letter again under its original type")
	count := c.fs.Int("n", 0, "exit after this many events (0: until interrupted)")
	_ = c.fs.Parse(args)

	pattern := gossip.EventType(c.fs.Arg(0))
	var opts []gossip.SubscribeOption
	if dead {
		pattern = gossip.DeadLetterPrefix + ".>"
		if *group != "" {
			pattern = gossip.EventType(gossip.DeadLetterPrefix + "." + *group + ".>")
		}
	} else {
		if pattern == "" {
			return errors.New("tail: a pattern is required, such as 'user_service.>'")
		}
		if *group != "" {
			opts = append(opts, gossip.Group(*group))
		}
	}
	bus, err := c.open(1)
	if err != nil {
		return err
	}
	defer bus.Shutdown(context.Background())

	enc := json.NewEncoder(os.Stdout)
	var seen atomic.Int64
	done := make(chan struct{})
	_, err = bus.Subscribe(pattern, func(hctx context.Context, e *gossip.Event) error {
		l := line{ID: e.ID, Type: string(e.Type), Source: e.Source, Time: e.Timestamp, Attempt: e.Attempt(), Metadata: e.Metadata}
		var v any
		if err := e.Decode(&v); err != nil {
			l.DataError = err.Error()
		} else if l.Data, err = json.Marshal(v); err != nil {
			l.DataError = err.Error()
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
		if dead && *replay {
			if err := bus.Publish(hctx, gossip.Replay(e)); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "replayed %s as %s\n", e.ID, e.Metadata[gossip.MetaDeadLetterType])
		}
		if n := seen.Add(1); *count > 0 && n == int64(*count) {
			close(done)
		}
		return nil
	}, append(opts, gossip.Workers(1))...)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-done:
	}
	return nil
}

func bench(ctx context.Context, args []string) error {
	c := newFlags("bench")
	n := c.fs.Int("n", 10000, "events to publish (at most 1,000,000)")
	batch := c.fs.Int("batch", 100, "events per Publish call")
	size := c.fs.Int("size", 256, "payload bytes")
	timeout := c.fs.Duration("timeout", time.Minute, "give up after this long")
	_ = c.fs.Parse(args)
	*n = min(max(*n, 1), 1_000_000)
	*batch = max(*batch, 1)
	bus, err := c.open(4)
	if err != nil {
		return err
	}
	defer bus.Shutdown(context.Background())
	typ := gossip.EventType(fmt.Sprintf("gossip_bench.run%d", time.Now().UnixNano()))
	var handled atomic.Int64
	done := make(chan struct{})
	if _, err := bus.Subscribe(typ, func(ctx context.Context, e *gossip.Event) error {
		if handled.Add(1) == int64(*n) {
			close(done)
		}
		return nil
	}); err != nil {
		return err
	}
	payload := strings.Repeat("x", *size)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	events := make([]*gossip.Event, 0, *batch)
	for i := 0; i < *n; {
		events = events[:0]
		for ; len(events) < *batch && i < *n; i++ {
			events = append(events, gossip.NewEvent(typ, payload))
		}
		if err := bus.Publish(ctx, events...); err != nil {
			return err
		}
	}
	published := time.Since(start)
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("bench: handled %d of %d events: %w", handled.Load(), *n, ctx.Err())
	}
	total := time.Since(start)
	fmt.Printf("%s: %d events of %d bytes, %d per Publish\n", bus.Transport(), *n, *size, *batch)
	fmt.Printf("  published in %v (%.0f events/s)\n", published.Round(time.Millisecond), float64(*n)/published.Seconds())
	fmt.Printf("  handled   in %v (%.0f events/s end to end)\n", total.Round(time.Millisecond), float64(*n)/total.Seconds())
	return nil
}
