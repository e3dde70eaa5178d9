package main

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The secrets are put together at run time, so this file holds none of
// them whole; and no test here logs them, or the report's output that
// would hold them were masking broken: a test that fails on them fails
// anyway.
var (
	marker    = "TOP" + "SECRET"
	pemHeader = "-----BEGIN EC PRIVATE " + "KEY-----"
	pemFooter = "-----END EC PRIVATE " + "KEY-----"
)

// nkeySeed returns a string shaped like an nkey user seed: "SU" and 56
// base32 characters.
func nkeySeed() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var b strings.Builder
	b.WriteString("SU")
	for range 56 {
		b.WriteByte(alphabet[rand.IntN(len(alphabet))])
	}
	return b.String()
}

// input builds `go test -json` input.
type input struct{ b strings.Builder }

func (s *input) add(e event) *input {
	j, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	s.b.Write(j)
	s.b.WriteByte('\n')
	return s
}

func (s *input) out(pkg, test, text string) *input {
	return s.add(event{Action: "output", Package: pkg, Test: test, Output: text})
}

func (s *input) result(pkg, test, action string) *input {
	return s.add(event{Action: action, Package: pkg, Test: test})
}

// passing adds a package whose one test logs line and passes.
func (s *input) passing(pkg, line string) *input {
	s.add(event{Action: "start", Package: pkg})
	s.add(event{Action: "run", Package: pkg, Test: "TestOK"})
	s.out(pkg, "TestOK", "=== RUN   TestOK\n")
	s.out(pkg, "TestOK", "    ok_test.go:9: "+line+"\n")
	s.out(pkg, "TestOK", "--- PASS: TestOK (0.00s)\n")
	s.result(pkg, "TestOK", "pass")
	s.out(pkg, "", "PASS\n")
	s.out(pkg, "", "ok  \t"+pkg+"\t0.012s\n")
	return s.result(pkg, "", "pass")
}

func run(t *testing.T, input string) (ok bool, out string) {
	t.Helper()
	var b strings.Builder
	ok, err := report(strings.NewReader(input), &b)
	require.NoError(t, err)
	return ok, b.String()
}

func TestPassingPackagesPrintOneLineEach(t *testing.T) {
	var s input
	s.passing("example.com/a", "a chatty log line")
	s.add(event{Action: "start", Package: "example.com/b"})
	s.out("example.com/b", "", "?   \texample.com/b\t[no test files]\n")
	s.result("example.com/b", "", "skip")

	ok, out := run(t, s.b.String())
	assert.True(t, ok)
	assert.Contains(t, out, "ok  \texample.com/a\t0.012s\n")
	assert.Contains(t, out, "?   \texample.com/b\t[no test files]\n")
	assert.NotContains(t, out, "a chatty log line", "a passing test's output is not shown")
	assert.Contains(t, out, "testlog: 2 packages (0 failed)")
}

func TestSkippedTestsAreCountedOnThePackageLine(t *testing.T) {
	var s input
	s.add(event{Action: "run", Package: "p", Test: "TestNeedsServer"})
	s.out("p", "TestNeedsServer", "    x_test.go:3: no nats-server binary\n")
	s.result("p", "TestNeedsServer", "skip")
	s.out("p", "", "ok  \tp\t0.1s\n")
	s.result("p", "", "pass")
	ok, out := run(t, s.b.String())
	assert.True(t, ok)
	assert.Contains(t, out, "ok  \tp\t0.1s\t(1 skipped)\n")
}

func TestFailingTestOutputIsShownInFull(t *testing.T) {
	var s input
	s.passing("example.com/ok", "fine")
	p := "example.com/broken"
	s.add(event{Action: "run", Package: p, Test: "TestGood"})
	s.out(p, "TestGood", "    good_test.go:1: quiet\n")
	s.result(p, "TestGood", "pass")
	s.add(event{Action: "run", Package: p, Test: "TestBad"})
	s.out(p, "TestBad", "=== RUN   TestBad\n")
	s.add(event{Action: "run", Package: p, Test: "TestBad/sub"})
	s.out(p, "TestBad/sub", "    bad_test.go:4: what it saw\n")
	s.out(p, "TestBad/sub", "    bad_test.go:5: boom\n")
	s.out(p, "TestBad/sub", "--- FAIL: TestBad/sub (0.00s)\n")
	s.result(p, "TestBad/sub", "fail")
	s.out(p, "TestBad", "--- FAIL: TestBad (0.00s)\n")
	s.result(p, "TestBad", "fail")
	s.out(p, "", "FAIL\n")
	s.out(p, "", "FAIL\t"+p+"\t0.020s\n")
	s.result(p, "", "fail")

	ok, out := run(t, s.b.String())
	assert.False(t, ok)
	assert.Contains(t, out, "=== RUN   TestBad\n    bad_test.go:4: what it saw\n    bad_test.go:5: boom\n--- FAIL: TestBad/sub (0.00s)\n--- FAIL: TestBad (0.00s)\nFAIL\nFAIL\texample.com/broken\t0.020s\n")
	assert.NotContains(t, out, "quiet", "a passing test's output is not shown, even in a failing package")
	assert.Contains(t, out, "ok  \texample.com/ok")
	assert.Contains(t, out, "testlog: 2 packages (1 failed); tests and subtests: 2 passed, 2 failed")
}

// A panic or a timeout ends the test binary with a test still running:
// its output is shown.
func TestOutputOfATestThatNeverEndedIsShown(t *testing.T) {
	var s input
	s.add(event{Action: "run", Package: "p", Test: "TestHangs"})
	s.out("p", "TestHangs", "panic: test timed out after 14m0s\n")
	s.out("p", "", "FAIL\tp\t840.1s\n")
	s.result("p", "", "fail")
	ok, out := run(t, s.b.String())
	assert.False(t, ok)
	assert.Contains(t, out, "panic: test timed out after 14m0s\nFAIL\tp\t840.1s\n")
}

func TestBuildFailureShowsTheCompilerError(t *testing.T) {
	var s input
	ip := "example.com/bad [example.com/bad.test]"
	s.add(event{Action: "build-output", ImportPath: ip, Output: "# " + ip + "\n"})
	s.add(event{Action: "build-output", ImportPath: ip, Output: "bad/bad.go:2:23: cannot use \"x\" (untyped string constant) as int value in return statement\n"})
	s.add(event{Action: "build-fail", ImportPath: ip})
	s.add(event{Action: "start", Package: "example.com/bad"})
	s.out("example.com/bad", "", "FAIL\texample.com/bad [build failed]\n")
	s.add(event{Action: "fail", Package: "example.com/bad", FailedBuild: ip})

	ok, out := run(t, s.b.String())
	assert.False(t, ok)
	assert.Contains(t, out, "# example.com/bad [example.com/bad.test]\nbad/bad.go:2:23: cannot use \"x\"")
	assert.Contains(t, out, "FAIL\texample.com/bad [build failed]\n")
}

// Lines that are not test2json events (go's own errors) are shown as they
// are, and scanned.
func TestOtherLinesPassThrough(t *testing.T) {
	var s input
	s.b.WriteString("go: warning: \"./...\" matched no packages\n")
	s.passing("p", "x")
	ok, out := run(t, s.b.String())
	assert.True(t, ok)
	assert.True(t, strings.HasPrefix(out, "go: warning: \"./...\" matched no packages\n"), out)
}

func TestNoResultFails(t *testing.T) {
	t.Run("EmptyInput", func(t *testing.T) {
		ok, out := run(t, "")
		assert.False(t, ok)
		assert.Contains(t, out, "no package reported a result")
	})
	t.Run("OutputEndsMidPackage", func(t *testing.T) {
		var s input
		s.passing("p", "x")
		s.add(event{Action: "run", Package: "q", Test: "TestLong"})
		s.out("q", "TestLong", "    long_test.go:1: still going\n")
		ok, out := run(t, s.b.String())
		assert.False(t, ok)
		assert.Contains(t, out, "    long_test.go:1: still going\nFAIL\tq\t(no result: the test output ended first)\n")
	})
}

// A line holding a secret fails the run, in a passing test too; the report
// names the package, the test and the kind, never the secret.
func TestSecretsInOutputFailTheRun(t *testing.T) {
	seed := nkeySeed()
	for _, tc := range []struct {
		name, line, secret, kind string
	}{
		{"Marker", "dial redis://user:" + marker + "-pw@127.0.0.1:6379: refused", marker, "the test-secret marker"},
		{"MarkerInAWord", "token=abc" + marker + "xyz", marker, "the test-secret marker"},
		{"PEMPrivateKey", "key: " + pemHeader, "PRIVATE KEY-----", "a PEM private key"},
		{"NKeySeed", "nkey " + seed + " rejected", seed, "an nkey seed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, out := run(t, new(input).passing("example.com/leaky", tc.line).b.String())
			assert.False(t, ok, "a secret in the output fails the run")
			assert.Contains(t, out, "testlog: SECRET in the output of example.com/leaky TestOK: "+tc.kind)
			assert.Contains(t, out, "testlog: FAIL: secrets in the test output")
			assert.NotContains(t, out, tc.secret, "the report does not print the secret")
		})
	}
}

// What is not a secret passes: a public nkey, a public key header, words
// like "secret".
func TestLookalikesPass(t *testing.T) {
	for _, line := range []string{
		"user UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4 connected",
		"-----BEGIN PUBLIC KEY-----",
		"password=*** redacted, secret=[hidden], topsecret lower case",
		"SU" + strings.Repeat("A", 40) + " is too short for a seed",
	} {
		ok, out := run(t, new(input).passing("p", line).b.String())
		assert.True(t, ok, "line %q", line)
		assert.NotContains(t, out, "SECRET in")
	}
}

// test2json cuts long lines into chunks: a secret cut in two is found.
func TestSecretSplitAcrossChunksIsFound(t *testing.T) {
	var s input
	long := strings.Repeat("a", 5000)
	s.out("p", "TestLong", long+marker[:4])
	s.out("p", "TestLong", marker[4:]+"\n")
	s.result("p", "TestLong", "pass")
	s.out("p", "", "ok  \tp\t0.1s\n")
	s.result("p", "", "pass")
	ok, out := run(t, s.b.String())
	assert.False(t, ok)
	assert.Contains(t, out, "SECRET in the output of p TestLong: the test-secret marker")
}

// A failing test's output is shown with its secrets masked, a PEM key's
// body included.
func TestFailingOutputIsMasked(t *testing.T) {
	body := "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oPtb9bESnBKkoAoGCCqGSM49"
	var s input
	s.out("p", "TestLeaks", "    a_test.go:1: url redis://:"+marker+"@host\n")
	s.out("p", "TestLeaks", pemHeader+"\n"+body+"\n"+pemFooter+"\n")
	s.out("p", "TestLeaks", "    a_test.go:2: after the key\n")
	s.result("p", "TestLeaks", "fail")
	s.out("p", "", "FAIL\tp\t0.1s\n")
	s.result("p", "", "fail")
	ok, out := run(t, s.b.String())
	assert.False(t, ok)
	assert.Contains(t, out, "    a_test.go:1: url redis://:[secret: the test-secret marker]@host\n")
	assert.Contains(t, out, "-----BEGIN EC [secret: a PEM private key]\n[secret: a PEM private key]\n-----END EC [secret: a PEM private key]\n")
	assert.NotContains(t, out, marker)
	assert.NotContains(t, out, body)
	assert.Contains(t, out, "    a_test.go:2: after the key\n", "lines after the key are shown again")
	assert.Contains(t, out, "SECRET in the output of p TestLeaks: a PEM private key, 3 line(s)")
}
