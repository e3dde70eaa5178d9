package transport

import (
	"strings"
	"testing"
)

// Built without -tags embeddednats, -driver nats says how to get the
// embedded server instead of failing obscurely.
func TestNATSWithoutTheEmbeddedServerSaysWhichTag(t *testing.T) {
	if StartEmbeddedNATS != nil {
		t.Skip("built with -tags embeddednats")
	}
	_, _, err := Resolve("nats", "test")
	if err == nil {
		t.Fatal("Resolve(nats) without the embedded server succeeded")
	}
	for _, want := range []string{"-tags embeddednats", "make demo-nats", "nats://127.0.0.1:4222"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %q", err, want)
		}
	}
}

func TestMemoryNamesTheExamplesBroker(t *testing.T) {
	dsn, stop, err := Resolve("memory", "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if dsn != "memory://demo" || Name(dsn) != "memory" {
		t.Errorf("Resolve(memory) = %q (%s)", dsn, Name(dsn))
	}
}
