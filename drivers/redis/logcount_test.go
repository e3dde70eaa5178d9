package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// logCounter is a slog handler that keeps every record as a line of text,
// for tests that count what was logged.
type logCounter struct {
	mu      *sync.Mutex
	lines   *[]string
	changed *chan struct{} // closed and replaced at each record
	attrs   []slog.Attr
}

func newLogCounter() *logCounter {
	ch := make(chan struct{})
	return &logCounter{mu: &sync.Mutex{}, lines: new([]string), changed: &ch}
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	add := func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true }
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.mu.Lock()
	*h.lines = append(*h.lines, b.String())
	close(*h.changed)
	*h.changed = make(chan struct{})
	h.mu.Unlock()
	return nil
}

func (h *logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *logCounter) WithGroup(string) slog.Handler { return h }

// Lines returns the lines logged so far.
func (h *logCounter) Lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), *h.lines...)
}

// Count returns how many lines contain s.
func (h *logCounter) Count(s string) int {
	n := 0
	for _, l := range h.Lines() {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// WaitFor waits until n lines contain s, and reports whether they did
// within timeout.
func (h *logCounter) WaitFor(s string, n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		changed := *h.changed
		h.mu.Unlock()
		if h.Count(s) >= n {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}
