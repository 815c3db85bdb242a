#!/bin/bash
# evict-catalog.sh postgres DB | sqlite FILE: makes a catalog's pages cold for
# a measurement: the state of the first queries after the database host
# boots (TAPEDECK_BENCH_COLD of internal/store/meta's BenchmarkMeta1M, e.g.
# TAPEDECK_BENCH_COLD=bench/evict-catalog.sh). Needs root and a PostgreSQL
# superuser through the local socket (psql as root).
#
# PostgreSQL (TAPEDECK_COLD says which caches; default both):
#  both:   DB's pages leave shared_buffers (a filler table of 1.5 times
#          shared_buffers, database
#          tapedeck_bench_filler, is read into the buffers by pg_prewarm's
#          'buffer' mode, which takes buffers by the normal clock sweep), then
#          CHECKPOINT and POSIX_FADV_DONTNEED on every file of DB's directory,
#          so that the kernel drops them from its page cache (only DB's
#          files: nothing else on the host is dropped);
#  shared: out of shared_buffers only; DB's files are read into the page
#          cache instead (PostgreSQL restarted on a warm host);
#  os:     out of the page cache only.
# SQLite: the file leaves the page cache (the store's connections keep their
# own small SQLite caches; the WAL stays).
# Prints what is left of the catalog in each cache.
set -e
what=${TAPEDECK_COLD:-both}
fadvise() {
  python3 - "$@" <<'PY'
import os, sys
for p in sys.argv[1:]:
    if not os.path.isfile(p):
        continue
    fd = os.open(p, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
PY
}
if [ "$1" = sqlite ]; then
  # The kernel's page cache only (the store's connections keep their own
  # small SQLite page caches). The WAL is left where it is.
  fadvise "$2"
  echo "$2: $(fincore -b -n -o RES -- "$2" | awk '{printf "%d", $1/1048576}') of $(du -m "$2" | cut -f1) MiB in the page cache"
  exit 0
fi
db=$2
oid=$(psql -d postgres -Atc "SELECT oid FROM pg_database WHERE datname = '$db'")
dir=$(psql -d postgres -Atc "SHOW data_directory")/base/$oid
# The filler: one and a half times shared_buffers.
sb=$(psql -d postgres -Atc "SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'")
if ! psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'tapedeck_bench_filler'" | grep -q 1; then
  psql -q -d postgres -c "CREATE DATABASE tapedeck_bench_filler"
  psql -q -d tapedeck_bench_filler -c "CREATE EXTENSION pg_prewarm; CREATE EXTENSION pg_buffercache"
fi
if [ "$(psql -d tapedeck_bench_filler -Atc "SELECT coalesce(pg_relation_size(to_regclass('filler')), 0) >= $sb * 3 / 2")" != t ]; then
  psql -q -d tapedeck_bench_filler -c "DROP TABLE IF EXISTS filler" \
    -c "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, $sb * 3 / 2 / 240) AS g"
fi
if [ "$what" != os ]; then
  psql -q -d tapedeck_bench_filler -Atc "SELECT pg_prewarm('filler', 'buffer')" >/dev/null
  psql -q -d tapedeck_bench_filler -Atc "SELECT pg_prewarm('filler', 'buffer')" >/dev/null
fi
if [ "$what" = shared ]; then
  # The host's page cache warm: every file of DB read once (the state of a
  # server whose catalog fits the RAM, after PostgreSQL restarts, or after
  # the page has left shared_buffers).
  cat "$dir"/* > /dev/null
else
  psql -q -d "$db" -c CHECKPOINT
  fadvise "$dir"/*
fi
cache=$(cd "$dir" && fincore -b -n -o RES -- * 2>/dev/null | awk '{s+=$1} END {printf "%d", s/1048576}')
size=$(du -sm "$dir" | cut -f1)
echo "$db: $(psql -d tapedeck_bench_filler -Atc "SELECT count(*) FROM pg_buffercache WHERE reldatabase = $oid") pages in shared_buffers; ${cache} of ${size} MiB in the page cache"
