# tapedeck: `make` alone lists the targets; nothing runs by surprise.
.PHONY: help build test bench bench-smoke bench-soak bench-cluster

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

# go.mod names go1.26.10; an older local Go fetches it from the module proxy.
GOTOOLCHAIN ?= auto
export GOTOOLCHAIN

help:
	@echo "make build        build ./tapedeck (static, version $(VERSION), commit $(COMMIT) stamped in)"
	@echo "make test         install the test dependencies and run the test suite (scripts/test.sh)"
	@echo "make bench        micro-benchmarks and the standard load runs (about 10 minutes; rewrites bench/RESULTS-load.md)"
	@echo "make bench-smoke  20 calls for 10 s on extension 2001"
	@echo "make bench-soak   200 calls held for 11 minutes, checking that memory and descriptors stay flat"
	@echo "make bench-cluster  cluster overhead: one node against two behind Kamailio (PostgreSQL, NATS), alternating"

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o tapedeck ./cmd/tapedeck

test:
	bash scripts/test.sh

# Micro-benchmarks and the standard load runs; writes bench/RESULTS-load.md.
bench:
	bash bench/run.sh

# 20 calls for 10 s on extension 2001; fails on any gap or failed call.
bench-smoke:
	bash bench/run.sh smoke

# 200 calls held up for 11 minutes (calls ending and replaced); after a minute of
# warm-up, fails unless the server's RSS, goroutines and open descriptors stay
# flat for 10 minutes.
bench-soak:
	bash bench/run.sh soak

# Cluster overhead (issue 20): alternating rounds of one node direct and two
# nodes sharing PostgreSQL and NATS behind Kamailio (bench/run.sh cluster).
bench-cluster:
	bash bench/run.sh cluster
