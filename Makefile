# The commands CI and the README use, in one place. `make help` lists them.
GO ?= go

.PHONY: help dev test vet bench build image compose-up
help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

dev: ## embedded NATS + emulator + worker in one process
	$(GO) run ./cmd/worker dev

test: ## the test suite, as CI runs it
	$(GO) vet ./...
	$(GO) test -race -p 1 -count=1 -timeout 30m ./...

bench: ## Go micro-benchmarks of the hot path
	$(GO) test -run '^$$' -bench . -benchmem ./job ./invoke ./worker ./dlq

build: ## static binaries in bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/ ./cmd/worker ./cmd/natsd

image: build ## the scratch image invoke-worker:dev
	docker build -t invoke-worker:dev .

compose-up: image ## NATS + emulator + two workers
	docker-compose up --scale worker=2
