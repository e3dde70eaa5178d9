package outbox_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gossipbus/gossip/internal/snippets"
)

// TestDocSnippetsRun builds and runs each complete program (a ```go block
// that starts with "package main") of docs/outbox.md against this module,
// as the README's snippets are (nothing is downloaded: GOPROXY=off): each
// compiles as written and runs to its end; the consumer-side one handles a
// re-sent event once.
func TestDocSnippetsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program per snippet")
	}
	var programs []string
	for _, b := range snippets.Blocks(t, filepath.Join("..", "docs", "outbox.md")) {
		if snippets.IsProgram(b) {
			programs = append(programs, b)
		}
	}
	if len(programs) == 0 {
		t.Fatal("docs/outbox.md has no complete program (package main)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, p := range programs {
		out := snippets.Run(ctx, t, p)
		if strings.Contains(p, "middleware.Idempotent") && out != "2 deliveries, shipped 1 time(s)" {
			t.Errorf("the consumer-side snippet printed %q, want %q", out, "2 deliveries, shipped 1 time(s)")
		}
	}
}
