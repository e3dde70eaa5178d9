package gossip_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gossipbus/gossip/internal/snippets"
)

// TestReadmeSnippetsRun copies each Go snippet of the README as a newcomer
// would, into a main package of its own, then builds and runs it against
// this module (nothing is downloaded: GOPROXY=off). Each must compile as
// written, imports included, and run to its end; the first must print what
// it promises.
func TestReadmeSnippetsRun(t *testing.T) {
	blocks := snippets.Blocks(t, "README.md")
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go snippet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for i, snippet := range blocks {
		t.Run(fmt.Sprint("snippet ", i+1), func(t *testing.T) {
			if !snippets.IsProgram(snippet) {
				t.Fatalf("not a complete program (package main):\n%s", snippet)
			}
			out := snippets.Run(ctx, t, snippet)
			t.Logf("printed:\n%s", out)
			if i == 0 && out != "welcomed Alice" {
				t.Fatalf("printed %q, want %q", out, "welcomed Alice")
			}
		})
	}
}
