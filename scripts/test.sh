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

bash scripts/test-deps.sh

echo "==> gofmt" >&2
unformatted=$(find . \( -path ./.git -o -path ./test/node/node_modules -o -path ./data \) -prune \
	-o -type f -name '*.go' -print0 | xargs -0 -r gofmt -l)
if [[ -n "$unformatted" ]]; then
	echo "gofmt: these files are not formatted (run gofmt -w):" >&2
	printf '  %s\n' $unformatted >&2
	exit 1
fi

echo "==> go vet ./..." >&2
go vet ./...
# test/goari is its own module (CyCoreSystems/ari/v5, kept out of tapedeck's
# go.mod and govulncheck): ./... does not reach it. The e2e tests build it.
echo "==> go vet ./... in test/goari" >&2
(cd test/goari && go vet ./...)

echo "==> govulncheck (scripts/vulncheck.sh)" >&2
bash scripts/vulncheck.sh

echo "==> go vet and go test -race -tags opus ./internal/recorder/ (Ogg Opus through libopus)" >&2
go vet -tags opus ./internal/recorder/
go test -race -count=1 -timeout 10m -tags opus ./internal/recorder/

echo "==> go test -race -count=1 -timeout 20m ./... $*" >&2
go test -race -count=1 -timeout 20m "$@" ./...

echo "==> bounded fuzzing (scripts/fuzz.sh, FUZZTIME=${FUZZTIME:-15s} per target)" >&2
bash scripts/fuzz.sh
