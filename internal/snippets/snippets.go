// Package snippets checks the Go programs of the documentation as a
// newcomer would use them: copied as they are into a main package of their
// own, built against this module (nothing downloaded: GOPROXY=off) and run
// to their end.
package snippets

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

var goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

// Blocks returns the ```go blocks of the markdown file at path.
func Blocks(t testing.TB, path string) []string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range goBlock.FindAllSubmatch(doc, -1) {
		blocks = append(blocks, string(m[1]))
	}
	return blocks
}

// IsProgram reports whether a block is a complete program.
func IsProgram(block string) bool { return strings.HasPrefix(block, "package main\n") }

// Run builds snippet as a main package under testdata in the current
// directory (inside the module, outside ./...), runs it for at most 30s and
// returns what it printed, trimmed. A snippet that does not compile or
// fails fails the test.
func Run(ctx context.Context, t testing.TB, snippet string) string {
	t.Helper()
	if _, err := os.Stat("testdata"); os.IsNotExist(err) {
		if err := os.Mkdir("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove("testdata") })
	}
	dir, err := os.MkdirTemp("testdata", "snippet-")
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
