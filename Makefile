# tapedeck benchmarks (the tests: bash scripts/test.sh).
.PHONY: bench bench-smoke bench-soak

# go.mod names go1.26.10; an older local Go fetches it from the module proxy.
GOTOOLCHAIN ?= auto
export GOTOOLCHAIN

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
