#!/usr/bin/env bash
# Runs tapedeck's whole test suite: test dependencies, formatting, vet, tests.
# Extra arguments are passed to `go test` (e.g. -run TestX -v).
# With CI=true, tests whose outside tools are missing fail instead of skip.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# go.mod names the Go release with the security fixes tapedeck needs
# (go1.26.10); a machine whose Go is older fetches it from the module proxy.
: "${GOTOOLCHAIN:=auto}"
export GOTOOLCHAIN

# step announces a step with the time it starts and the seconds since the
# script began, so that a slow run's log says where its time went.
step() { echo "==> $* [$(date -u +%H:%M:%S), ${SECONDS}s]" >&2; }

bash scripts/test-deps.sh

step "gofmt"
unformatted=$(find . \( -path ./.git -o -path ./test/node/node_modules -o -path ./data \) -prune \
	-o -type f -name '*.go' -print0 | xargs -0 -r gofmt -l)
if [[ -n "$unformatted" ]]; then
	echo "gofmt: these files are not formatted (run gofmt -w):" >&2
	printf '  %s\n' $unformatted >&2
	exit 1
fi

step "go vet ./..."
go vet ./...
# test/goari is its own module (CyCoreSystems/ari/v5, kept out of tapedeck's
# go.mod and govulncheck): ./... does not reach it. The e2e tests build it.
step "go vet ./... in test/goari"
(cd test/goari && go vet ./...)

step "govulncheck (scripts/vulncheck.sh)"
bash scripts/vulncheck.sh

step "go vet and go test -race -tags opus ./internal/recorder/ (Ogg Opus through libopus)"
go vet -tags opus ./internal/recorder/
go test -race -count=1 -timeout 10m -tags opus ./internal/recorder/

step "go test -race -count=1 -timeout 20m ./... $*"
go test -race -count=1 -timeout 20m "$@" ./...

step "bounded fuzzing (scripts/fuzz.sh, FUZZTIME=${FUZZTIME:-15s} per target)"
bash scripts/fuzz.sh

step "all passed"
