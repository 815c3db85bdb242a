#!/usr/bin/env bash
# Runs tapedeck's fuzz targets for a bounded time each (FUZZTIME, default
# 20s). Their seed corpora already run as ordinary tests in go test; this
# explores beyond them. A crasher is written under testdata/fuzz/<target>/:
# commit it with the fix so it stays a regression test.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime=${FUZZTIME:-20s}
# package target
targets=(
	"./internal/sip/ FuzzHandlers" # SIP messages through sipgo's parser and tapedeck's handlers (issue 12)
)
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "==> go test -run=^\$ -fuzz=^${name}\$ -fuzztime=${fuzztime} ${pkg}" >&2
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="${fuzztime}" "${pkg}"
done
