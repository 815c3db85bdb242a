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

step "go test -race -count=1 -timeout 20m ./... $* (test/e2e in a go test of its own, beside the rest)"
# test/e2e takes about 12 minutes, most of it waiting on calls' real-time
# audio with a core to spare. In one `go test ./...` it is the last package
# to get one of -p's two slots (about 10 minutes in) and then runs nearly
# alone: 22 minutes in all. Started first, in a process of its own, it runs
# beside the other packages, and the fuzzing beside its last minutes. Its
# output is printed at its end.
e2e_log=$(mktemp)
go test -race -count=1 -timeout 20m "$@" ./test/e2e/ >"$e2e_log" 2>&1 &
e2e_pid=$!
# A step that fails before the wait below does not leave it running.
trap 'kill "$e2e_pid" 2>/dev/null || true' EXIT
# The slowest packages first (1-5 minutes each with -race; go test starts
# packages in the order given): started last, as in ./...'s order, meta's
# five minutes ran on alone at the end.
m=github.com/tapedeck/tapedeck
slow=("$m/internal/store/meta" "$m/bench/loadgen" "$m/packaging" "$m/cmd/tapedeck" "$m/internal/api/twilio")
mapfile -t rest < <(go list ./... | grep -vxF -e "$m/test/e2e" "${slow[@]/#/-e}")
rest=("${slow[@]}" "${rest[@]}")
rest_rc=0
go test -race -count=1 -timeout 20m "$@" "${rest[@]}" || rest_rc=$?

fuzz_rc=0
if [[ $rest_rc -eq 0 ]]; then
	step "bounded fuzzing (scripts/fuzz.sh, FUZZTIME=${FUZZTIME:-15s} per target), beside test/e2e if it still runs"
	bash scripts/fuzz.sh || fuzz_rc=$?
fi

step "waiting for test/e2e"
e2e_rc=0
wait "$e2e_pid" || e2e_rc=$?
trap - EXIT
step "test/e2e's output"
cat "$e2e_log"
rm -f "$e2e_log"
if [[ $rest_rc -ne 0 || $e2e_rc -ne 0 || $fuzz_rc -ne 0 ]]; then
	echo "failed: go test of test/e2e exit status $e2e_rc, of the other packages $rest_rc; fuzzing $fuzz_rc (not run when the other packages failed)" >&2
	exit 1
fi

step "all passed"
