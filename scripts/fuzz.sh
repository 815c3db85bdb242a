#!/usr/bin/env bash
# Bounded fuzz runs of the fuzz targets (the seed corpora under
# testdata/fuzz/ also run in plain `go test`). FUZZTIME overrides the time
# per target (default 15s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${FUZZTIME:-15s}"

# HTTP requests (method, path, query, body) through the ARI and Restcomm
# routers and handlers over a real store (issue 12). Minimizing a long
# interesting input can take the whole budget, so it is bounded too.
go test -run='^$' -fuzz='^FuzzARIRoutes$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/api/ari/
go test -run='^$' -fuzz='^FuzzRestcommRoutes$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/api/restcomm/
