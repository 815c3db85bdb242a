#!/usr/bin/env bash
# Installs what tapedeck's test suite needs. Idempotent and quiet when all is
# in place; safe to run before every test run (scripts/test.sh does).
#
#  * Debian packages, only when missing (apt-get update only when needed):
#      baresip   real SIP phone (end-to-end tests)
#      sip-tester   SIPp, the SIP test tool (session timer tests, the README's first call)
#      buildah, systemd   the container image build and `systemd-analyze verify` (packaging/)
#      sox, espeak-ng   making/measuring audio (audio tests)
#      lame      the mp3 encoder program (mp3 recordings)
#      asterisk-core-sounds-en-wav   Asterisk's English prompts (8 kHz WAV
#                under /usr/share/asterisk/sounds/en_US_f_Allison; sound: playback)
#      asterisk-moh-opsound-wav   Asterisk's default music on hold (WAV under
#                /usr/share/asterisk/moh; ARI moh/startMoh, the default class)
#      libopus-dev, opus-tools   libopus for -tags opus builds and opusdec to
#                check their ogg (Opus) recordings
#      gcc, libc6-dev   cgo, needed by `go test -race`
#      kamailio  the SIP proxy with packaging/kamailio's dispatcher config in
#                front of several nodes (test/e2e TestKamailioDispatcher)
#      chromium  the headless browser that drives the web page's end-to-end
#                test (through npm playwright-core, no browser download)
#      nats-server  NATS with JetStream for the ari.event.* tests, only when
#                nothing answers on 127.0.0.1:4222 (started below)
#    As root they are installed with apt-get; otherwise the missing ones are
#    listed and the script carries on (the tests that need them skip locally).
#  * npm packages of test/node (ari-client; twilio, the official Twilio
#    library the Twilio Recordings API tests drive; @wazo/sdk, whose git-hosted
#    dependency getstats is pinned to the registry's 1.0.8 by an npm
#    override, so nothing is fetched from GitHub; playwright-core, which
#    drives Debian's chromium), with `npm ci` whenever
#    node_modules is missing or older than package.json/package-lock.json.
#  * versitygw, the S3-compatible server of the internal/store/blob tests,
#    via scripts/s3-test.sh (go install into .cache/bin when missing).
#  * PostgreSQL for the internal/store/meta tests, via scripts/pg-test.sh
#    (as root: installs/starts the postgresql cluster when nothing listens
#    on 127.0.0.1:5432 and makes the role tapedeck/tapedeck the tests use).
#
# Exit status: non-zero when an install step failed under CI=true (locally
# it only warns, so that an offline machine can still run what it can).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "test-deps: $*" >&2; }

failed=0
fail() {
	say "$*"
	if [[ "${CI:-}" == "true" ]]; then
		failed=1
	fi
}

# run CMD...: run quietly, print its output only when it fails.
run() {
	local out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" | tail -n 40 >&2
		return 1
	fi
}

# ---------------------------------------------------------------- Debian
missing=()
if ! command -v baresip >/dev/null 2>&1 || [[ ! -e /usr/lib/baresip/modules/ctrl_tcp.so ]]; then
	missing+=(baresip)
fi
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v sox >/dev/null 2>&1 || missing+=(sox)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v lame >/dev/null 2>&1 || missing+=(lame)
[[ -e /usr/share/asterisk/sounds/en_US_f_Allison/tt-monkeys.wav ]] || missing+=(asterisk-core-sounds-en-wav)
compgen -G '/usr/share/asterisk/moh/*.wav' >/dev/null || missing+=(asterisk-moh-opsound-wav)
[[ -e /usr/include/opus/opus.h ]] || missing+=(libopus-dev)
command -v opusdec >/dev/null 2>&1 || missing+=(opus-tools)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v kamailio >/dev/null 2>&1 || [[ -x /usr/sbin/kamailio ]] || missing+=(kamailio)
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
if [[ -z "${TAPEDECK_TEST_NATS_URL:-}" ]] && ! nats_up && [[ ! -x /usr/sbin/nats-server ]]; then
	missing+=(nats-server)
fi
cc=$(go env CC 2>/dev/null || true)
if ! command -v "${cc:-gcc}" >/dev/null 2>&1; then
	missing+=(gcc libc6-dev)
fi

if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		say "not root; missing packages: ${missing[*]} (install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}); tests needing them will be skipped"
		if [[ "${CI:-}" == "true" ]]; then
			failed=1
		fi
	elif ! command -v apt-get >/dev/null 2>&1; then
		fail "no apt-get; install by hand: ${missing[*]}"
	else
		export DEBIAN_FRONTEND=noninteractive
		# wait (up to 10 min) for another apt/dpkg run to release its lock
		apt_opts=(-q -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
		need_update=0
		for p in "${missing[@]}"; do
			cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
			if [[ -z "$cand" || "$cand" == "(none)" ]]; then
				need_update=1
			fi
		done
		installed=0
		if ((need_update == 0)) &&
			run apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"; then
			installed=1
		fi
		if ((installed == 0)); then
			# package lists missing or stale: refresh them once, then retry
			if run apt-get "${apt_opts[@]}" update &&
				run apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"; then
				installed=1
			fi
		fi
		if ((installed == 0)); then
			fail "apt-get install ${missing[*]} failed"
		fi
	fi
fi

# ------------------------------------------------------------------- npm
nodedir=test/node
if [[ -f "$nodedir/package.json" ]]; then
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		fail "node/npm not installed; the Node ARI client tests will be skipped"
	else
		stamp="$nodedir/node_modules/.tapedeck-deps-stamp"
		want=$(cat "$nodedir/package.json" "$nodedir/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)
		want="$want node-$(node --version)"
		have=$(cat "$stamp" 2>/dev/null || true)
		if [[ ! -d "$nodedir/node_modules" || "$have" != "$want" ]]; then
			npm_opts=(--no-audit --no-fund --loglevel=error)
			if [[ -f "$nodedir/package-lock.json" ]]; then
				npm_cmd=(npm ci "${npm_opts[@]}")
			else
				npm_cmd=(npm install "${npm_opts[@]}")
			fi
			if (cd "$nodedir" && run "${npm_cmd[@]}"); then
				printf '%s\n' "$want" >"$stamp"
			else
				fail "'${npm_cmd[*]}' in $nodedir failed"
			fi
		fi
	fi
fi

# ------------------------------------------------------------- versitygw
if ! bash scripts/s3-test.sh >/dev/null; then
	fail "scripts/s3-test.sh could not install versitygw; the S3 blob store tests will be skipped"
fi

# ------------------------------------------------------------ PostgreSQL
if ! bash scripts/pg-test.sh >/dev/null; then
	fail "scripts/pg-test.sh could not make PostgreSQL reachable; the PostgreSQL tests of internal/store/meta will be skipped"
fi

# ------------------------------------------------------------------ NATS
# The NATS tests use $TAPEDECK_TEST_NATS_URL or 127.0.0.1:4222; start
# Debian's nats-server with JetStream there when nothing answers.
if [[ -z "${TAPEDECK_TEST_NATS_URL:-}" ]] && ! nats_up; then
	if [[ $(id -u) -eq 0 && -x /usr/sbin/nats-server ]]; then
		mkdir -p /var/lib/nats-server
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
			-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
		for _ in $(seq 50); do
			nats_up && break
			sleep 0.1
		done
		nats_up || fail "nats-server did not start on 127.0.0.1:4222; the NATS tests will be skipped"
	else
		fail "nothing answers on 127.0.0.1:4222 and nats-server cannot be started here; the NATS tests will be skipped"
	fi
fi

exit "$failed"
