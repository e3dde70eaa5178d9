package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gossipbus/gossip/gossip"
)

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

func publish(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	typ := fs.String("type", "", "event type (required)")
	data := fs.String("data", "null", "JSON data, or @file to read it from a file, or - for stdin")
	meta := metaFlag{}
	fs.Var(meta, "meta", "metadata key=value (repeatable)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *typ == "" {
		return usagef("--type is required")
	}
	raw, err := readData(*data)
	if err != nil {
		return err
	}
	if !json.Valid(raw) {
		return usagef("--data is not valid JSON: %.80s", raw)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	bus, _, err := c.open(ctx, 1)
	if err != nil {
		return err
	}
	defer c.shutdown(bus)
	e := gossip.NewEvent(gossip.EventType(*typ), json.RawMessage(raw))
	for k, v := range meta {
		e.WithMetadata(k, v)
	}
	if err := bus.Publish(ctx, e); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, e.ID)
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

// eventLine is how tail prints an event with -o json.
type eventLine struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Source    string            `json:"source"`
	Time      time.Time         `json:"time"`
	Attempt   int               `json:"attempt,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Data      json.RawMessage   `json:"data,omitempty"`
	DataError string            `json:"data_error,omitempty"`
}

func tail(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	c.outputFlag()
	group := fs.String("group", "", "join this consumer group (durable: it shares events with the group's other members)")
	count := fs.Int("n", 0, "exit after this many events (0: until interrupted or --timeout)")
	fs.Lookup("timeout").DefValue = "0s"
	c.timeout = 0
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one pattern, such as 'user_service.>'; got %d arguments", len(pos))
	}
	if *count < 0 {
		return usagef("-n %d: want 0 or more", *count)
	}
	var opts []gossip.SubscribeOption
	if *group != "" {
		opts = append(opts, gossip.Group(*group))
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	bus, _, err := c.open(ctx, 1)
	if err != nil {
		return err
	}
	defer c.shutdown(bus)
	var seen atomic.Int64
	done := make(chan struct{})
	_, err = bus.Subscribe(gossip.EventType(pos[0]), func(_ context.Context, e *gossip.Event) error {
		n := seen.Add(1)
		if *count > 0 && n > int64(*count) {
			return errors.New("tail: enough events printed") // redelivered to the group's other members
		}
		l := eventLine{ID: e.ID, Type: string(e.Type), Source: e.Source, Time: e.Timestamp, Attempt: e.Attempt(), Metadata: e.Metadata}
		var v any
		if err := e.Decode(&v); err != nil {
			l.DataError = err.Error()
		} else if l.Data, err = json.Marshal(v); err != nil {
			l.DataError = err.Error()
		}
		if c.output == "json" {
			if err := c.printJSON(l); err != nil {
				return err
			}
		} else {
			data := string(l.Data)
			if l.DataError != "" {
				data = "(" + l.DataError + ")"
			}
			fmt.Fprintf(c.stdout, "%s  %s  %s  %s\n", l.Time.UTC().Format(time.RFC3339Nano), l.Type, l.ID, data)
		}
		if n == int64(*count) {
			close(done)
		}
		return nil
	}, append(opts, gossip.Workers(1))...)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && *count > 0 {
			return fmt.Errorf("%d of %d events within --timeout", min(seen.Load(), int64(*count)), *count)
		}
		return nil // interrupted, or --timeout without -n: a normal end
	}
}

func bench(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	n := fs.Int("n", 10000, "events to publish (1 to 1,000,000)")
	batch := fs.Int("batch", 100, "events per Publish call")
	size := fs.Int("size", 256, "payload bytes")
	fs.Lookup("timeout").DefValue = "1m0s"
	c.timeout = time.Minute
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *n < 1 || *n > 1_000_000 || *batch < 1 || *size < 0 {
		return usagef("want 1 <= -n <= 1000000, --batch >= 1, --size >= 0")
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	bus, conn, err := c.open(ctx, 4)
	if err != nil {
		return err
	}
	defer c.shutdown(bus)
	typ := gossip.EventType(fmt.Sprintf("gossip_bench.run%d", time.Now().UnixNano()))
	var handled atomic.Int64
	done := make(chan struct{})
	sub, err := bus.Subscribe(typ, func(context.Context, *gossip.Event) error {
		if handled.Add(1) == int64(*n) {
			close(done)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The run's events are removed when it ends, however it ends.
	defer func() {
		_ = sub.Unsubscribe()
		if st, ok := storeOf(conn); ok {
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ccancel()
			if err := st.forget(cctx, string(typ)); err != nil {
				fmt.Fprintf(c.stderr, "gossip bench: remove the events of %s: %v\n", typ, err)
			}
		}
	}()
	payload := strings.Repeat("x", *size)
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
		return fmt.Errorf("handled %d of %d events: %w", handled.Load(), *n, ctx.Err())
	}
	total := time.Since(start)
	fmt.Fprintf(c.stdout, "%s: %d events of %d bytes, %d per Publish\n", bus.Transport(), *n, *size, *batch)
	fmt.Fprintf(c.stdout, "  published in %v (%.0f events/s)\n", published.Round(time.Millisecond), float64(*n)/published.Seconds())
	fmt.Fprintf(c.stdout, "  handled   in %v (%.0f events/s end to end)\n", total.Round(time.Millisecond), float64(*n)/total.Seconds())
	return nil
}
