#!/usr/bin/env bash
# Makes sure versitygw, the real S3-compatible server used by the tests of
# internal/store/blob, is installed, and prints its path on stdout.
# Idempotent: when the right version is in place it only prints the path.
#
#  * $TAPEDECK_VERSITYGW, when set to an executable, is used as is.
#  * Otherwise .cache/bin/versitygw under the repository root (git-ignored),
#    installed there when missing or of another version with
#      GOBIN=<repo>/.cache/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
#    (about a minute the first time; needs the Go module proxy).
#
# The Go tests find the binary the same way (then PATH, then
# $(go env GOPATH)/bin) and start their own server; without it they skip,
# or fail under CI=true.
#
# Usage: scripts/s3-test.sh          install if needed, print the path
#        scripts/s3-test.sh --test   also run go test -race on internal/store/blob
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=v1.8.0
module=github.com/versity/versitygw
bindir="$PWD/.cache/bin"

say() { echo "s3-test: $*" >&2; }

# installed_version BIN: the versitygw module version BIN was built from.
installed_version() {
	go version -m "$1" 2>/dev/null | awk -v m="$module" '$1 == "mod" && $2 == m {print $3}'
}

if [[ -n "${TAPEDECK_VERSITYGW:-}" ]]; then
	if [[ ! -x "$TAPEDECK_VERSITYGW" ]]; then
		say "TAPEDECK_VERSITYGW=$TAPEDECK_VERSITYGW is not an executable"
		exit 1
	fi
	bin=$TAPEDECK_VERSITYGW
else
	bin="$bindir/versitygw"
	have=""
	if [[ -x "$bin" ]]; then
		have=$(installed_version "$bin")
	fi
	if [[ "$have" != "$version" ]]; then
		if ! command -v go >/dev/null 2>&1; then
			say "go not found; cannot install versitygw"
			exit 1
		fi
		say "installing versitygw $version into $bindir${have:+ (replacing $have)} ..."
		mkdir -p "$bindir"
		if ! out=$(GOBIN="$bindir" go install "$module/cmd/versitygw@$version" 2>&1); then
			printf '%s\n' "$out" | tail -n 40 >&2
			say "go install $module/cmd/versitygw@$version failed"
			exit 1
		fi
	fi
fi

echo "$bin"

if [[ "${1:-}" == "--test" ]]; then
	TAPEDECK_VERSITYGW="$bin" go test -race -count=1 ./internal/store/blob/
fi
