#!/usr/bin/env bash
# Runs govulncheck on tapedeck against the Go vulnerability database as the
# module proxy serves it (the golang.org/x/vulndb module at a pinned
# snapshot), so CI needs no other network. A vulnerability that tapedeck's
# code reaches fails the run (govulncheck exits 3); ones only present in
# required modules but not called are reported and do not.
#
# The OSV files of the snapshot are turned into govulncheck's v1 database
# layout by the snapshot's own cmd/indexdb, once, under .cache/vulndb/.
#
# To move to a newer snapshot: set VULNDB_VERSION to a newer pseudo-version
# of golang.org/x/vulndb that the proxy serves.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${GOTOOLCHAIN:=auto}"
export GOTOOLCHAIN

GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

say() { echo "vulncheck: $*" >&2; }

db="$PWD/.cache/vulndb/$VULNDB_VERSION"
if [[ ! -f "$db/index/db.json" ]]; then
	say "building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION"
	src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [[ -z "$src" || ! -d "$src/data/osv" ]]; then
		say "golang.org/x/vulndb@$VULNDB_VERSION has no data/osv"
		exit 1
	fi
	rm -rf "$db.tmp"
	mkdir -p "$(dirname "$db")"
	# indexdb lives in the vulndb module itself; run it from a scratch
	# module so that its dependencies do not enter tapedeck's go.mod.
	(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" \
		-vulns "$src/data/osv" -out "$db.tmp")
	mv "$db.tmp" "$db"
fi

say "govulncheck@$GOVULNCHECK_VERSION ($(go env GOVERSION)) against golang.org/x/vulndb@$VULNDB_VERSION"
exec go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" -db "file://$db" ./...
