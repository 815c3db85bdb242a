# tapedeck benchmarks (the tests: bash scripts/test.sh).
.PHONY: bench bench-smoke

# Micro-benchmarks and the standard load runs; writes bench/RESULTS-load.md.
bench:
	bash bench/run.sh

# 20 calls for 10 s on extension 2001; fails on any gap or failed call.
bench-smoke:
	bash bench/run.sh smoke
