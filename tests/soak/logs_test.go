package soak

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// shownLogLines is how many of the drivers' log lines a run shows in the
// test output; the rest are counted.
const shownLogLines = 20

// logSink takes the buses' log lines: it shows the first few in the test
// output, counts all of them and fails the test if one holds the servers'
// password (without printing it).
type logSink struct {
	t      *testing.T
	mu     sync.Mutex
	lines  int
	closed bool
}

func newLogSink(t *testing.T) *logSink {
	s := &logSink{t: t}
	t.Cleanup(s.close)
	return s
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// Write takes one record: slog's text handler writes each in one call.
func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines++
	if s.closed {
		return len(p), nil // a line after the run: counted only, the test may have ended
	}
	if strings.Contains(string(p), password) {
		s.t.Errorf("a driver log line holds the server's password (line %d)", s.lines)
		return len(p), nil
	}
	if s.lines <= shownLogLines {
		s.t.Logf("log: %s", bytes.TrimSpace(p))
	}
	return len(p), nil
}

func (s *logSink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}

func (s *logSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines
}
