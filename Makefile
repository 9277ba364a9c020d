# paygate — see README.md.
GO      ?= go
BIN     ?= bin/paygate
BENCH_BIN ?= bin/paygate-bench
PKGS    ?= ./...
# PARALLEL is how many tests of one package run at once (go test -parallel):
# the tests that wait on the pipeline mostly wait, each on its own database
# and broker, so more than the 2 cores' worth run well together.
PARALLEL ?= 8
# TEST_P is how many test binaries run at once (go test -p; Go's default is
# the number of cores). The packages that mostly wait (SLOW_PKGS: the
# pipeline's end-to-end tests, the load harness's smoke runs, the store's
# template clones) are started first, and one more binary than the 2 cores
# links and runs the many quick packages beside them: 58-59 s with Go's
# default on 2 cores, 49-50 s so (docs/performance.md).
TEST_P    ?= 3
SLOW_PKGS ?= ./e2e/ ./internal/bench/ ./internal/store/ ./internal/console/

.PHONY: run build test test-short chaos vet promcheck console-screenshots fmt bench microbench clean

## run: the whole pipeline on embedded defaults (Kafka-protocol broker in process, local PostgreSQL)
run: build
	$(BIN) dev

## build: the paygate binary
build:
	$(GO) build -o $(BIN) ./cmd/paygate

## test: every test (needs PostgreSQL; see PAYGATE_TEST_DATABASE_URL), and the
## Prometheus rules (promcheck)
test: promcheck
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -p $(TEST_P) -parallel $(PARALLEL) -timeout 20m $(if $(filter ./...,$(PKGS)),$(SLOW_PKGS)) $(PKGS)

## chaos: the production topology under faults (e2e TestChaos): every role in a
## process of its own, on a PostgreSQL server of its own, under load, while members
## are killed, added and removed, every role restarted, PostgreSQL and the broker
## stopped 30 s each; then the invariants. And the broker's disk filled under pay
## requests (TestBrokerDiskFull). Needs root. A few minutes; .ci/run runs it after test.
chaos:
	PAYGATE_CHAOS=1 $(GO) test -count=1 -timeout 25m -run '^(TestChaos|TestBrokerDiskFull)$$' -v ./e2e/

## test-short: the fast tests only, without PostgreSQL (tests that need it skip)
test-short:
	$(GO) test -count=1 -short -parallel $(PARALLEL) $(PKGS)

vet:
	$(GO) vet $(PKGS)

## console-screenshots: take docs/console/*.png again, from the console's browser
## test (needs Chromium and PostgreSQL)
console-screenshots:
	PAYGATE_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run '^TestConsoleInABrowser$$' ./internal/console/

## promcheck: promtool check rules and test rules on deploy/prometheus/, and a test
## for every alert; without promtool it says so and skips (fails in CI:
## PAYGATE_REQUIRE_PROMTOOL)
promcheck:
	deploy/prometheus/check

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: the end-to-end load harness (docs/performance.md), a command of its own
## (cmd/paygate-bench, so that paygate carries no load generator): in process, open loop,
## against the machine's PostgreSQL and broker ceiling; BENCH_ARGS adds flags
## (e.g. BENCH_ARGS='-sweep 1000,2000,3000 -duration 20s'); the report also goes to bench.json.
## -split runs the paygate built beside it as the gateway.
BENCH_ARGS ?= -rate 2000 -duration 60s
bench: build
	$(GO) build -o $(BENCH_BIN) ./cmd/paygate-bench
	$(BENCH_BIN) $(BENCH_ARGS) -json bench.json

## microbench: Go micro-benchmarks of the hot pieces (signatures, callback parsing,
## schema validation, the decision table, event encoding)
microbench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin data
