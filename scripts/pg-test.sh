#!/usr/bin/env bash
# Makes sure a PostgreSQL server is reachable for the tests of
# internal/store/meta, and prints the DSN they use (the tests default to
# exactly this one when TAPEDECK_TEST_PG_DSN is unset):
#
#   postgres://tapedeck:tapedeck@127.0.0.1:5432/postgres?sslmode=disable
#
# Idempotent; quick and quiet when all is in place. As root on Debian
# (12, PostgreSQL 15; any version under /usr/lib/postgresql works):
#  * nothing listening on 127.0.0.1:5432: installs the postgresql package if
#    missing (apt-get), creates the "main" cluster if missing, and starts it
#    with pg_ctlcluster --skip-systemctl-redirect (no systemd needed);
#  * makes sure the role tapedeck (password tapedeck, LOGIN, CREATEDB)
#    exists, through the local socket as the postgres user;
#  * if that role still cannot log in over TCP with its password, adds
#    "host all tapedeck 127.0.0.1/32 scram-sha-256" to the top of
#    pg_hba.conf and reloads.
# The tests create (and drop) a database tapedeck_test_<random> per run.
#
# Exit status: 0 when the DSN works; 1 otherwise (e.g. not root and the role
# is missing: the PostgreSQL tests then skip locally and fail under CI=true).
set -euo pipefail

readonly DSN='postgres://tapedeck:tapedeck@127.0.0.1:5432/postgres?sslmode=disable'
readonly HOST=127.0.0.1 PORT=5432 ROLE=tapedeck PASSWORD=tapedeck

say() { echo "pg-test: $*" >&2; }

# run CMD...: run quietly, print its output only when it fails.
run() {
	local out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" | tail -n 40 >&2
		return 1
	fi
}

listening() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

can_login() {
	command -v psql >/dev/null 2>&1 &&
		PGPASSWORD=$PASSWORD PGCONNECT_TIMEOUT=5 psql -X -w \
			"host=$HOST port=$PORT user=$ROLE dbname=postgres sslmode=disable" \
			-Atqc 'SELECT 1' >/dev/null 2>&1
}

# as_postgres SQL: run SQL as the postgres superuser (local socket, peer
# auth; else TCP, for trust setups). Prints the result.
as_postgres() {
	local sql=$1
	if id postgres >/dev/null 2>&1 &&
		(cd /tmp && runuser -u postgres -- psql -X -w -v ON_ERROR_STOP=1 -Atq -p "$PORT" -d postgres -c "$sql") 2>/dev/null; then
		return 0
	fi
	PGCONNECT_TIMEOUT=5 psql -X -w -v ON_ERROR_STOP=1 -Atq \
		"host=$HOST port=$PORT user=postgres dbname=postgres sslmode=disable" -c "$sql"
}

# apt_install PKG...: install, refreshing the package lists when needed.
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	local apt_opts=(-q -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
	if run apt-get "${apt_opts[@]}" install -y --no-install-recommends "$@"; then
		return 0
	fi
	run apt-get "${apt_opts[@]}" update &&
		run apt-get "${apt_opts[@]}" install -y --no-install-recommends "$@"
}

wait_ready() {
	local i
	for ((i = 0; i < 60; i++)); do
		if listening && { ! command -v pg_isready >/dev/null 2>&1 || pg_isready -q -h "$HOST" -p "$PORT"; }; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}

if can_login; then
	echo "$DSN"
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	say "not root, and $ROLE cannot log in to PostgreSQL at $HOST:$PORT; run this script as root (or set TAPEDECK_TEST_PG_DSN); the PostgreSQL tests will be skipped"
	exit 1
fi

# ------------------------------------------------- server on 127.0.0.1:5432
if ! listening; then
	if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
		command -v apt-get >/dev/null 2>&1 || {
			say "no apt-get; install PostgreSQL by hand"
			exit 1
		}
		say "installing postgresql"
		apt_install postgresql || {
			say "apt-get install postgresql failed"
			exit 1
		}
	fi
	ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
	if ! pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1 == v && $2 == "main" { f = 1 } END { exit !f }'; then
		say "creating cluster $ver/main"
		run pg_createcluster --port "$PORT" "$ver" main || {
			say "pg_createcluster $ver main failed"
			exit 1
		}
	fi
	cport=$(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" { print $3 }')
	if [[ "$cport" != "$PORT" ]]; then
		say "cluster $ver/main is configured for port $cport, not $PORT; fix /etc/postgresql/$ver/main/postgresql.conf"
		exit 1
	fi
	if ! pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" && $4 == "online" { f = 1 } END { exit !f }'; then
		say "starting cluster $ver/main"
		run pg_ctlcluster --skip-systemctl-redirect "$ver" main start || {
			say "pg_ctlcluster $ver main start failed (log: /var/log/postgresql/postgresql-$ver-main.log)"
			exit 1
		}
	fi
	if ! wait_ready; then
		# Running, but not on 127.0.0.1: listen on localhost and restart.
		say "cluster $ver/main does not listen on $HOST:$PORT; setting listen_addresses = 'localhost'"
		as_postgres "ALTER SYSTEM SET listen_addresses = 'localhost'" >/dev/null &&
			run pg_ctlcluster --skip-systemctl-redirect "$ver" main restart && wait_ready || {
			say "PostgreSQL does not answer on $HOST:$PORT"
			exit 1
		}
	fi
fi

if ! command -v psql >/dev/null 2>&1; then
	say "installing postgresql-client"
	apt_install postgresql-client || {
		say "apt-get install postgresql-client failed"
		exit 1
	}
fi

# ------------------------------------------------------------ role tapedeck
role_sql="DO \$\$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
		CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
	ELSE
		ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
	END IF;
END \$\$"
if ! run as_postgres "$role_sql"; then
	say "cannot create role $ROLE as the postgres superuser"
	exit 1
fi

# ------------------------------------------------------------- pg_hba.conf
if ! can_login; then
	hba=$(as_postgres 'SHOW hba_file')
	line="host all $ROLE $HOST/32 scram-sha-256"
	if [[ -f "$hba" ]] && ! grep -qxF "$line" "$hba"; then
		say "adding '$line' to $hba"
		tmp=$(mktemp)
		{
			echo "# tapedeck tests (scripts/pg-test.sh)"
			echo "$line"
			cat "$hba"
		} >"$tmp"
		cat "$tmp" >"$hba" # keeps owner and mode
		rm -f "$tmp"
		run as_postgres 'SELECT pg_reload_conf()' || true
		sleep 1
	fi
fi

if ! can_login; then
	say "role $ROLE still cannot log in at $HOST:$PORT (check pg_hba.conf)"
	exit 1
fi
echo "$DSN"
