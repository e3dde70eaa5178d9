package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// event is one record of `go test -json` (cmd/test2json); build events
// carry ImportPath instead of Package.
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string
	FailedBuild string
}

// maxPartial bounds a line kept while its end has not arrived.
const maxPartial = 1 << 20

// stream is one source of output lines: a test, a package's own output or
// a build. test2json splits long lines into chunks; stream joins them, so
// a secret cut in two is still found.
type stream struct {
	partial strings.Builder
	redact  redactor
}

// pkg is a package under test: its output lines in order and its tests'
// results.
type pkg struct {
	lines   []outputLine
	results map[string]string // test → "pass", "fail" or "skip"
	skipped int
}

type outputLine struct{ test, text string }

// finding is a secret seen in a stream, reported without the secret.
type finding struct{ where, kind string }

type reporter struct {
	out      io.Writer
	pkgs     map[string]*pkg
	builds   map[string][]string // import path → compiler output
	streams  map[string]*stream
	findings map[finding]int
	order    []finding // findings in the order first seen

	packages, failedPackages     int
	passed, failedTests, skipped int
	scanned                      int
	failed                       bool
}

// report reads `go test -json` output from in and writes the report to
// out; ok is false when a test or a build failed, a secret was found or no
// package reported a result.
func report(in io.Reader, out io.Writer) (ok bool, err error) {
	r := &reporter{
		out: out, pkgs: map[string]*pkg{}, builds: map[string][]string{},
		streams: map[string]*stream{}, findings: map[finding]int{},
	}
	br := bufio.NewReaderSize(in, 64<<10)
	for {
		raw, err := br.ReadString('\n')
		if raw != "" {
			r.record(raw)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false, fmt.Errorf("read the test output: %w", err)
		}
	}
	r.finish()
	return !r.failed && len(r.findings) == 0 && r.packages > 0, nil
}

// record handles one line of input: a JSON event, or anything else go test
// printed (its own errors), which is scanned and shown as it is.
func (r *reporter) record(raw string) {
	var e event
	if strings.HasPrefix(raw, "{") && json.Unmarshal([]byte(raw), &e) == nil && e.Action != "" {
		r.handle(e)
		return
	}
	for _, l := range r.lines("go", "", raw) {
		fmt.Fprintln(r.out, l)
	}
}

func (r *reporter) handle(e event) {
	switch {
	case e.Action == "build-output":
		r.builds[e.ImportPath] = append(r.builds[e.ImportPath], r.lines("build", e.ImportPath, e.Output)...)
	case e.Action == "build-fail":
		r.builds[e.ImportPath] = append(r.builds[e.ImportPath], r.flush("build", e.ImportPath)...)
		for _, l := range r.builds[e.ImportPath] {
			fmt.Fprintln(r.out, l)
		}
		delete(r.builds, e.ImportPath)
		r.failed = true
	case e.Action == "output":
		p := r.pkg(e.Package)
		for _, l := range r.lines(e.Package, e.Test, e.Output) {
			p.lines = append(p.lines, outputLine{e.Test, l})
		}
	case e.Test != "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
		p := r.pkg(e.Package)
		p.results[e.Test] = e.Action
		switch e.Action {
		case "pass":
			r.passed++
		case "fail":
			r.failedTests++
		case "skip":
			r.skipped++
			p.skipped++
		}
	case e.Action == "pass" || e.Action == "fail" || e.Action == "skip":
		r.done(e.Package, e.Action)
	}
}

func (r *reporter) pkg(name string) *pkg {
	p := r.pkgs[name]
	if p == nil {
		p = &pkg{results: map[string]string{}}
		r.pkgs[name] = p
	}
	return p
}

// lines adds chunk to the stream of (source, test) and returns the lines
// it completed, secrets masked.
func (r *reporter) lines(source, test, chunk string) []string {
	key := source + "\x00" + test
	s := r.streams[key]
	if s == nil {
		s = &stream{}
		r.streams[key] = s
	}
	var out []string
	for chunk != "" {
		i := strings.IndexByte(chunk, '\n')
		if i < 0 {
			s.partial.WriteString(chunk)
			if s.partial.Len() < maxPartial {
				break
			}
			chunk = "" // a line too long to wait for: scan what came
		} else {
			s.partial.WriteString(chunk[:i])
			chunk = chunk[i+1:]
		}
		out = append(out, r.scan(s, source, test, s.partial.String()))
		s.partial.Reset()
	}
	return out
}

// flush returns what remains of the streams of source (all its tests when
// test is "") as lines, and forgets them.
func (r *reporter) flush(source string, tests ...string) []string {
	var out []string
	for _, key := range slices.Sorted(maps.Keys(r.streams)) {
		src, test, _ := strings.Cut(key, "\x00")
		if src != source || (len(tests) > 0 && !slices.Contains(tests, test)) {
			continue
		}
		if s := r.streams[key]; s.partial.Len() > 0 {
			out = append(out, r.scan(s, src, test, s.partial.String()))
		}
		delete(r.streams, key)
	}
	return out
}

// scan masks the secrets of one line and records where they were.
func (r *reporter) scan(s *stream, source, test, text string) string {
	r.scanned++
	masked, kinds := s.redact.line(text)
	where := source
	if test != "" {
		where += " " + test
	}
	for _, k := range kinds {
		f := finding{where, k}
		if r.findings[f] == 0 {
			r.order = append(r.order, f)
		}
		r.findings[f]++
	}
	return masked
}

// done prints the report of a package that finished: its ok / ? line, or,
// when it failed, the output of its failing tests and its own output.
func (r *reporter) done(name, action string) {
	p := r.pkg(name)
	for _, l := range r.flush(name) {
		p.lines = append(p.lines, outputLine{"", l})
	}
	delete(r.pkgs, name)
	r.packages++
	switch action {
	case "pass", "skip":
		summary := "ok  \t" + name
		for _, l := range p.lines {
			if l.test == "" && (strings.HasPrefix(l.text, "ok ") || strings.HasPrefix(l.text, "?   ")) {
				summary = l.text
			}
		}
		if p.skipped > 0 {
			summary += fmt.Sprintf("\t(%d skipped)", p.skipped)
		}
		fmt.Fprintln(r.out, summary)
	default:
		r.failed = true
		r.failedPackages++
		r.printFailure(p)
	}
}

// printFailure prints the lines of the tests that failed or never ended
// (a panic, a timeout) and the package's own lines, in the order they came.
func (r *reporter) printFailure(p *pkg) {
	for _, l := range p.lines {
		if res := p.results[l.test]; l.test == "" || res == "fail" || res == "" {
			fmt.Fprintln(r.out, l.text)
		}
	}
}

// finish reports packages that never ended (go test was killed), the
// secrets found and the totals.
func (r *reporter) finish() {
	for _, l := range r.flush("go") {
		fmt.Fprintln(r.out, l)
	}
	for _, name := range slices.Sorted(maps.Keys(r.pkgs)) {
		p := r.pkgs[name]
		for _, l := range r.flush(name) {
			p.lines = append(p.lines, outputLine{"", l})
		}
		r.failed = true
		r.failedPackages++
		r.packages++
		r.printFailure(p)
		fmt.Fprintf(r.out, "FAIL\t%s\t(no result: the test output ended first)\n", name)
	}
	for _, f := range r.order {
		fmt.Fprintf(r.out, "testlog: SECRET in the output of %s: %s, %d line(s) (not shown)\n", f.where, f.kind, r.findings[f])
	}
	switch {
	case r.packages == 0:
		fmt.Fprintln(r.out, "testlog: FAIL: no package reported a result")
	case len(r.findings) > 0:
		fmt.Fprintf(r.out, "testlog: FAIL: secrets in the test output (%d lines scanned)\n", r.scanned)
	}
	fmt.Fprintf(r.out, "testlog: %d packages (%d failed); tests and subtests: %d passed, %d failed, %d skipped; %d output lines scanned for secrets\n",
		r.packages, r.failedPackages, r.passed, r.failedTests, r.skipped, r.scanned)
}
