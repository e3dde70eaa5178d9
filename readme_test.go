package gossip_test

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

// TestReadmeFirstSnippetRuns copies the README's first Go snippet as a
// newcomer would, into a main package of its own, then builds and runs it
// against this module (nothing is downloaded: GOPROXY=off): it must compile
// as written, imports included, and deliver its event.
func TestReadmeFirstSnippetRuns(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```go\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```go snippet")
	}
	snippet := string(m[1])
	if !strings.HasPrefix(snippet, "package main\n") {
		t.Fatalf("the README's first snippet is not a complete program (package main):\n%s", snippet)
	}
	// testdata keeps the package out of ./... while it exists.
	dir, err := os.MkdirTemp("testdata", "readme-")
	if os.IsNotExist(err) {
		if err = os.Mkdir("testdata", 0o755); err == nil {
			t.Cleanup(func() { os.Remove("testdata") })
			dir, err = os.MkdirTemp("testdata", "readme-")
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(snippet), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "snippet")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./"+filepath.ToSlash(dir))
	build.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the README's first snippet does not compile: %v\n%s\n--- snippet ---\n%s", err, out, snippet)
	}
	runCtx, cancelRun := context.WithTimeout(ctx, 30*time.Second)
	defer cancelRun()
	out, err := exec.CommandContext(runCtx, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("the README's first snippet failed: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "welcomed Alice" {
		t.Fatalf("the README's first snippet printed %q, want %q", got, "welcomed Alice")
	}
}
