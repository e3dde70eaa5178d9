package outbox_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
	doc, err := os.ReadFile(filepath.Join("..", "docs", "outbox.md"))
	if err != nil {
		t.Fatal(err)
	}
	var programs []string
	for _, m := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(doc, -1) {
		if strings.HasPrefix(string(m[1]), "package main\n") {
			programs = append(programs, string(m[1]))
		}
	}
	if len(programs) == 0 {
		t.Fatal("docs/outbox.md has no complete program (package main)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, p := range programs {
		out := buildAndRunSnippet(ctx, t, p)
		if strings.Contains(p, "middleware.Idempotent") && out != "2 deliveries, shipped 1 time(s)" {
			t.Errorf("the consumer-side snippet printed %q, want %q", out, "2 deliveries, shipped 1 time(s)")
		}
	}
}

// buildAndRunSnippet builds snippet as a main package under testdata
// (inside the module, outside ./...) and runs it.
func buildAndRunSnippet(ctx context.Context, t *testing.T, snippet string) string {
	t.Helper()
	if _, err := os.Stat("testdata"); os.IsNotExist(err) {
		if err := os.Mkdir("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove("testdata") })
	}
	dir, err := os.MkdirTemp("testdata", "doc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(snippet), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "snippet")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./"+filepath.ToSlash(dir))
	build.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("does not compile: %v\n%s\n--- snippet ---\n%s", err, out, snippet)
	}
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(runCtx, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("failed: %v\n%s\n--- snippet ---\n%s", err, out, snippet)
	}
	return strings.TrimSpace(string(out))
}
