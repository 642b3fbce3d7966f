# Gatehouse: the two set-up commands are `make run` and `make test`.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run build test deps vet fmt-check sh-check bench

## run: build and start a single-instance gateway (proxy :8080, admin 127.0.0.1:9876, data in ./data)
run: build
	./bin/gatehouse serve

## build: compile bin/gatehouse
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/gatehouse ./cmd/gatehouse

## deps: install what the test suite needs and is missing (idempotent)
deps:
	./scripts/install-deps.sh

## test: the whole suite: install missing deps, gofmt check, go vet, go test -race
test: deps fmt-check vet sh-check
	$(GO) test -race -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

# sh-check: the shell scripts (install-deps, examples) at least parse.
sh-check:
	@for f in $$(git ls-files '*.sh' 2>/dev/null || find . -name '*.sh'); do bash -n "$$f" || exit 1; done

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## bench: router and per-request benchmarks, and config propagation across 3 instances on Redis
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/snapshot/ ./internal/proxy/
	$(GO) test -run '^$$' -bench ConfigPropagation -benchtime 50x ./cmd/gatehouse/
