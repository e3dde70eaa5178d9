# gossip — make targets. `make test` is what CI runs (.ci/run).
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
TEST_TIMEOUT ?= 14m

.PHONY: test test-short vet lint bench bench-quick bench-micro demo demo-nats demo-redis demo-catchup fmt

## test: vet, then every test with the race detector (Redis and NATS tests
## find or start their own servers; see docs/operations.md)
test: vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

## test-short: the quick loop (fault and cluster tests skipped)
test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

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

demo-nats:
	$(GO) run ./examples/microservices -driver nats

demo-redis:
	$(GO) run ./examples/microservices -driver redis://127.0.0.1:6379/0

## demo-catchup: durable catch-up across processes (DRIVER=nats://... or redis://...)
demo-catchup:
	./examples/microservices/catchup.sh $(DRIVER)
