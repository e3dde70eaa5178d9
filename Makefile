# gossip — make targets. `make test` is what CI runs (.ci/run).
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
TEST_TIMEOUT ?= 14m

# bash with pipefail: a failing `go test` fails its pipe into testlog.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: test test-short soak vet lint bench bench-quick bench-micro demo demo-nats demo-redis demo-catchup fmt

## test: vet, then every test with the race detector (Redis and NATS tests
## find or start their own servers; see docs/operations.md). The verbose
## JSON output goes through internal/testlog, which prints what plain go test
## would (ok / FAIL per package, failing tests in full) and fails the run if
## any line of output, passing tests' included, holds a secret.
test: vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -json ./... 2>&1 | $(GO) run ./internal/testlog

## test-short: the quick loop (fault and cluster tests skipped)
test-short:
	$(GO) test -short -count=1 ./...

## soak: the soak test alone, verbose: memory, Redis and NATS through a
## server restart and a 5 s SIGSTOP (make test runs it too)
soak:
	$(GO) test -race -count=1 -v -run '^TestSoak$$' ./tests/soak/

## vet: also the files the examples build only with tags (the embedded NATS
## server, the OTLP exporters)
vet:
	$(GO) vet ./...
	$(GO) vet -tags embeddednats,otlp ./examples/...

lint: vet
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench-micro: the hot-path micro-benchmarks, for benchstat
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./gossip/... ./drivers/... | tee bench-micro.txt
	$(GO) run $(BENCHSTAT) bench-micro.txt

## bench: gossip vs the raw clients vs Watermill, side by side (bench/ module)
bench:
	@if [ -f bench/go.mod ]; then cd bench && $(GO) run . ; else $(MAKE) bench-micro; fi

bench-quick:
	@if [ -f bench/go.mod ]; then cd bench && $(GO) run . -quick ; else $(GO) test -run '^$$' -bench . -benchmem ./drivers/memory/; fi

## demo: the microservices example on the in-process transport
demo:
	$(GO) run ./examples/microservices

## demo-nats: on an embedded NATS server, which the demo links only with this tag
demo-nats:
	$(GO) run -tags embeddednats ./examples/microservices -driver nats

demo-redis:
	$(GO) run ./examples/microservices -driver redis://127.0.0.1:6379/0

## demo-catchup: durable catch-up across processes (DRIVER=nats://... or redis://...)
demo-catchup:
	./examples/microservices/catchup.sh $(DRIVER)
