#!/bin/bash
# bench/hook15.sh WORKTREE [ROUNDS]: issue 15's webhook speed item, measured alternating.
#
# Builds tapedeck, loadgen and the webhook benchmarks from WORKTREE, and the same from the
# build before the direct delivery path (REF, default 1e47572^ = cea29f0) in a detached
# worktree; then
#   1. the sender's benchmarks (BenchmarkDeliverOneByOne, BenchmarkDeliver, BenchmarkDeliverPaced at
#      500/s), ref/new alternating;
#   2. ROUNDS rounds (default 2) of loadgen scenario o, 100 calls x ${HOLD:-12s}, each call's
#      OzML Record with FinishedUrl, plus Ozeki API Record commands at ${RATE:-300}/s during the
#      calls, with FinishedUrl (B) and without (C), on the ref and the new build:
#      order per round: new B, new C, ref B, ref C (rotated each round).
# Prints every command, each run's figures, and per build the server CPU a RecordCompleted
# costs in the full path: (B - C) / notifications delivered.
set -e
W=$(cd "$1" && pwd)
ROUNDS=${2:-2}
RATE=${RATE:-300}
HOLD=${HOLD:-12s}
REF=${REF:-cea29f0}
export GOTOOLCHAIN=auto
OUT=$(mktemp -d /tmp/hook15-XXXX)
run() { echo "+ $* # $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2; "$@"; }
RW=$OUT/ref
run git -C "$W" worktree add -q --detach "$RW" "$REF"
# The paced benchmark uses only the package's API: the same file measures the reference.
run cp "$W/internal/webhook/paced_test.go" "$RW/internal/webhook/"
(cd "$RW" && run go build -o $OUT/tapedeck-ref ./cmd/tapedeck && run go test -c -o $OUT/wh-ref.test ./internal/webhook/)
(cd "$W" && run go build -o $OUT/tapedeck-new ./cmd/tapedeck && run go test -c -o $OUT/wh-new.test ./internal/webhook/ &&
	run go build -o $OUT/loadgen ./bench/loadgen)

echo "## 1. sender benchmarks (CPU per notification includes the in-process loopback receiver)"
for i in 1 2; do
	for b in ref new; do
		(cd $OUT && run ./wh-$b.test -test.run '^$' -test.bench 'Deliver$|DeliverOneByOne|DeliverPaced' -test.benchtime 2000x 2>&1 |
			grep ^Bench | sed "s/^/$b /")
	done
done

echo "## 2. load runs: 100 calls x $HOLD, Record commands at $RATE/s (B: with FinishedUrl, C: without)"
lg() { # build variant round
	local b=$1 v=$2 r=$3 extra=""
	[ "$v" = C ] && extra="-record-no-url"
	run $OUT/loadgen -q -server-cmd $OUT/tapedeck-$b -scenario o -callbacks -record-rate $RATE $extra \
		-calls 100 -rate 50 -duration $HOLD -json $OUT/$b-$v-$r.json >/dev/null 2>$OUT/$b-$v-$r.err || true
	python3 - "$OUT/$b-$v-$r.json" "$b" "$v" "$r" <<'EOF'
import json, sys
p, b, v, r = sys.argv[1:]
try:
    j = json.load(open(p))
except Exception as e:
    print(f"{b} {v} round {r}: no report ({e})"); sys.exit()
x, cb, rec, cpu = j.get("extra_records") or {}, j.get("callbacks") or {}, j["recordings"], j["server_cpu"]
print(f"{b} {v} round {r}: {'PASSED' if j['passed'] else 'FAILED ' + str(j.get('problems'))}; "
      f"server CPU {cpu['total_seconds']:.2f} s, {cpu['ms_per_call_second']:.3f} ms per call-second; "
      f"calls' recordings {rec['found']}/{rec['expected']}, {rec['with_gap']} with gaps, {rec['bad_length']} length off, "
      f"off {rec['off_ms_min']:+.0f}..{rec['off_ms_max']:+.0f} ms; pacer late {j['rtp']['pacer_late_packets']}; "
      f"Record commands {x.get('accepted')} accepted / {x.get('sent')} sent; their callbacks {x.get('delivered')} "
      f"({x.get('rate_per_second', 0):.0f}/s, peak {x.get('peak_per_second')} in 1 s); calls' own callbacks {cb.get('delivered')}")
EOF
}
order=("new B" "new C" "ref B" "ref C")
for r in $(seq 1 $ROUNDS); do
	for k in 0 1 2 3; do
		set -- ${order[$(((k + r - 1) % 4))]}
		lg $1 $2 $r
	done
done
python3 - $OUT $ROUNDS <<'EOF'
import json, sys, glob
out, rounds = sys.argv[1], int(sys.argv[2])
for b in ("ref", "new"):
    per = []
    for r in range(1, rounds + 1):
        try:
            B = json.load(open(f"{out}/{b}-B-{r}.json")); C = json.load(open(f"{out}/{b}-C-{r}.json"))
        except Exception:
            continue
        n = B["extra_records"]["delivered"]
        d = B["server_cpu"]["total_seconds"] - C["server_cpu"]["total_seconds"]
        per.append((d, n, B["server_cpu"]["ms_per_call_second"], C["server_cpu"]["ms_per_call_second"]))
    for d, n, b_, c_ in per:
        print(f"{b}: B - C = {d*1000:.0f} ms of server CPU for {n} notifications = {d*1e6/max(n,1):.0f} µs each; "
              f"per call-second B {b_:.3f} / C {c_:.3f} ms")
EOF
echo "(raw reports in $OUT)"
git -C "$W" worktree remove --force "$RW" || true
