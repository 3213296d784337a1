# Stagegate — `make help` lists the targets.
GO      ?= go
BIN     ?= bin/stagegate
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
ARGS    ?=

.DEFAULT_GOAL := help
.PHONY: help run build test test-race bench fuzz lint check-deps clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: build ## start the whole sandbox embedded with the demo trial (ARGS="--config f.yaml" to pass flags)
	./$(BIN) up $(ARGS)

build: ## build bin/stagegate
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/stagegate

test: check-deps ## run every test against real parts (embedded NATS JetStream, OPA, SQLite)
	$(GO) test -count=1 -timeout 8m ./...

test-race: ## run the tests with the race detector (slower)
	$(GO) test -race -count=1 -timeout 15m ./...

bench: ## run the Go micro-benchmarks of the hot path
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

FUZZTIME ?= 20s
fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeChatRequest$$' -fuzztime $(FUZZTIME) ./gateway
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeInteraction$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZTIME) ./sandbox

lint: ## check formatting (gofmt) and run go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

check-deps: ## guard against the ancient nats-server a bare `go mod tidy` can pull in
	@$(GO) list -m github.com/nats-io/nats-server/v2 | grep -Eq ' v2\.(1[5-9]|[2-9][0-9])\.' \
	  || { echo "nats-server must be v2.15 or newer: go get github.com/nats-io/nats-server/v2@v2.15.3"; exit 1; }

clean: ## remove build output and the default data dir
	rm -rf bin .stagegate
