package gossip_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeSnippetsRun copies each Go snippet of the README as a newcomer
// would, into a main package of its own, then builds and runs it against
// this module (nothing is downloaded: GOPROXY=off). Each must compile as
// written, imports included, and run to its end; the first must print what
// it promises.
func TestReadmeSnippetsRun(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	snippets := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(snippets) == 0 {
		t.Fatal("README.md has no ```go snippet")
	}
	// Under testdata the packages stay out of ./... while they exist.
	if _, err := os.Stat("testdata"); os.IsNotExist(err) {
		if err := os.Mkdir("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove("testdata") })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for i, m := range snippets {
		snippet := string(m[1])
		t.Run(fmt.Sprint("snippet ", i+1), func(t *testing.T) {
			if !strings.HasPrefix(snippet, "package main\n") {
				t.Fatalf("not a complete program (package main):\n%s", snippet)
			}
			out := buildAndRun(ctx, t, snippet)
			t.Logf("printed:\n%s", out)
			if i == 0 && out != "welcomed Alice" {
				t.Fatalf("printed %q, want %q", out, "welcomed Alice")
			}
		})
	}
}

func buildAndRun(ctx context.Context, t *testing.T, snippet string) string {
	t.Helper()
	dir, err := os.MkdirTemp("testdata", "readme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
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
		t.Fatalf("failed: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
