package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The demo's everyday build leaves out what only -tags embeddednats and
// -tags otlp need: linking them made its cold build minutes long.
func TestDemoBuildLinksNoEmbeddedServerNorOTLP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, heavy := range []string{"github.com/nats-io/nats-server/", "go.opentelemetry.io/otel/exporters/otlp/", "google.golang.org/grpc"} {
			if strings.HasPrefix(pkg, heavy) {
				t.Errorf("the demo's default build imports %s", pkg)
			}
		}
	}
}
