// Command testlog turns the output of `go test -json` into the compact
// report plain `go test` prints — an ok / FAIL line per package, the whole
// output of every failing test, compiler errors — and scans every line of
// output, passing tests' included, for secrets: the test-secret marker
// TOPSECRET (every password, token or user secret in gossip's tests holds
// it), a PEM private key header, an nkey seed. A secret is reported by
// package, test and kind, never printed.
//
// It exits 1 when a test or build failed, when a secret was found, or when
// the input held no test result; 2 when it could not read its input.
// `make test` runs
//
//	go test -race -count=1 -json ./... 2>&1 | go run ./internal/testlog
package main

import (
	"fmt"
	"os"
)

func main() {
	ok, err := report(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testlog:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}
