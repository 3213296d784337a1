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

BENCH_DIR ?= bin/bench
BENCHTIME ?= 1s
BENCHCOUNT ?= 1
# the replay benchmarks (100k recorded interactions, ~1 min each) are left out of make bench
BENCHSKIP ?= ^BenchmarkReplay
BENCHARGS ?=
SOAKTIME  ?= 10m
SOAKARGS  ?=
BENCH_BUILD = mkdir -p $(BENCH_DIR) && $(GO) build -o $(BENCH_DIR)/stagegate ./cmd/stagegate \
	&& $(GO) build -o $(BENCH_DIR)/stagegate-bench ./cmd/stagegate-bench
.PHONY: soak profile
bench: ## measure (under 10 min on 2 cores): Go micro-benchmarks, then direct/proxy/gateway side by side; updates BENCHMARKS.md
	@mkdir -p $(BENCH_DIR)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -skip '$(BENCHSKIP)' ./... > $(BENCH_DIR)/micro.txt; \
	  st=$$?; cat $(BENCH_DIR)/micro.txt; exit $$st
	$(BENCH_BUILD)
	$(BENCH_DIR)/stagegate-bench --stagegate $(BENCH_DIR)/stagegate --micro $(BENCH_DIR)/micro.txt \
	  --profile $(BENCH_DIR)/profiles --profile-duration 6s --out BENCHMARKS.md --command "$(strip make bench $(BENCHARGS))" $(BENCHARGS)

soak: ## 10 minutes (SOAKTIME) at 1000 req/s against the full gateway, RSS sampled every 10 s; updates BENCHMARKS.md (SOAKARGS, e.g. --duplicate-window=2m)
	$(BENCH_BUILD)
	$(BENCH_DIR)/stagegate-bench soak --stagegate $(BENCH_DIR)/stagegate --rate 1000 --duration $(SOAKTIME) $(SOAKARGS) \
	  --profile $(BENCH_DIR)/soak --out BENCHMARKS.md --command "make soak SOAKTIME=$(SOAKTIME) $(SOAKARGS)"

profile: ## CPU, heap and allocation profiles of the gateway under load, into bin/bench/profiles
	$(BENCH_BUILD)
	$(BENCH_DIR)/stagegate-bench profile --stagegate $(BENCH_DIR)/stagegate --dir $(BENCH_DIR)/profiles

FUZZTIME ?= 20s
# Every parser of outside input (issue 9): request bodies, upstream event
# streams, configuration, trial and rollout YAML, the spool, NATS payloads.
# Seeds: f.Add in each target and testdata/fuzz/<target>/ beside it.
FUZZ_TARGETS = \
	./gateway:FuzzDecodeChatRequest ./gateway:FuzzStreamRelay ./gateway:FuzzDecodeCompletion ./gateway:FuzzUpstreamBody \
	./events:FuzzDecodeInteraction ./events:FuzzDecodeFinding ./events:FuzzSpoolSegment \
	./sandbox:FuzzParseConfig ./policies/trial:FuzzParse \
	./deploy:FuzzParseSpec ./deploy:FuzzDecodeState ./deploy:FuzzDecodeModel \
	./incidents:FuzzSplitStatements
fuzz: ## run each fuzz target for FUZZTIME (default 20s; 13 targets, about 6 min); writes FUZZ.md
	$(GO) run ./cmd/stagegate-bench fuzz --fuzztime $(FUZZTIME) --out FUZZ.md \
	  --command "make fuzz FUZZTIME=$(FUZZTIME)" $(FUZZ_TARGETS)

CHAOS_ARGS ?=
.PHONY: chaos
chaos: build ## fault run (~5 min, loopback only): NATS outage, SIGKILLs, candidate faults under 200 req/s; writes CHAOS.md
	$(GO) test -tags chaos -run '^TestChaos$$' -count=1 -timeout 15m -v ./sandbox/chaos \
	  -args -chaos.bin=$(CURDIR)/$(BIN) -chaos.report=$(CURDIR)/CHAOS.md $(CHAOS_ARGS)

.PHONY: cluster-test
cluster-test: check-deps ## scale-out run (~1 min, loopback only, PostgreSQL on 127.0.0.1:5432): 3 NATS nodes, 2 gateways, 2 monitors, 2 controllers; kills a node, a monitor and the leader
	$(GO) test -tags cluster -run '^TestCluster$$' -count=1 -timeout 8m -v ./internal/clustertest

.PHONY: screenshots
screenshots: ## run the console's browser test in Chromium and save its pages under testdata/screenshots/ (for the README)
	@mkdir -p testdata/screenshots
	STAGEGATE_SCREENSHOTS=$(CURDIR)/testdata/screenshots CI=true $(GO) test -count=1 -run '^TestBrowserTriage$$' -v ./sandbox/console/

lint: ## check formatting (gofmt) and run go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

check-deps: ## guard against the ancient nats-server a bare `go mod tidy` can pull in
	@$(GO) list -m github.com/nats-io/nats-server/v2 | grep -Eq ' v2\.(1[5-9]|[2-9][0-9])\.' \
	  || { echo "nats-server must be v2.15 or newer: go get github.com/nats-io/nats-server/v2@v2.15.3"; exit 1; }

clean: ## remove build output and the default data dir
	rm -rf bin .stagegate

DATASETS ?= ../shared/datasets
EVAL_DIR ?= $(or $(TMPDIR),/tmp)/stagegate-eval
.PHONY: eval
eval: ## measure the detectors on DATASETS with `stagegate scan` and write EVAL.md (a few minutes)
	@mkdir -p $(EVAL_DIR)
	$(GO) build -o $(EVAL_DIR)/stagegate ./cmd/stagegate
	@for f in $(DATASETS)/*.jsonl; do echo "scan $$f"; $(EVAL_DIR)/stagegate scan --timings "$$f" > "$(EVAL_DIR)/$$(basename $$f)" || exit 1; done
	$(GO) run ./monitors/eval/evalreport -datasets $(DATASETS) -scans $(EVAL_DIR) -out EVAL.md
