# paygate — see README.md.
GO      ?= go
BIN     ?= bin/paygate
PKGS    ?= ./...

.PHONY: run build test test-short vet fmt bench clean

## run: the whole pipeline on embedded defaults (Kafka-protocol broker in process, local PostgreSQL)
run: build
	$(BIN) dev

## build: the paygate binary
build:
	$(GO) build -o $(BIN) ./cmd/paygate

## test: every test (needs PostgreSQL; see PAYGATE_TEST_DATABASE_URL)
test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)

## test-short: the fast tests only
test-short:
	$(GO) test -count=1 -short $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: Go micro-benchmarks of the hot pieces
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin data
