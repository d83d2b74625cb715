#!/usr/bin/env bash
# Starts the PostgreSQL cluster the peer benchmarks (`task bench-peers`)
# and the Debezium check run on: a second cluster of the installed PostgreSQL
# (Debian's pg_createcluster), named peers, on 127.0.0.1:${BENCH_PG_PORT:-5440},
# with wal_level=logical, which Debezium's logical decoding needs. The main
# cluster on 5432 is left as it is (changing wal_level needs a restart).
# Local TCP connections are trusted, replication ones included: a benchmark
# server with throw-away data. Safe to run again: it creates, configures and
# starts only what is missing, and prints the server's URL. (The name sorts
# after main: scripts/setup.sh manages the first cluster pg_lsclusters lists.)
set -euo pipefail

port=${BENCH_PG_PORT:-5440}
name=peers
log() { echo "bench-postgres: $*" >&2; }
die() { echo "bench-postgres: $*" >&2; exit 1; }

command -v pg_lsclusters >/dev/null || die "PostgreSQL is not installed (scripts/setup.sh installs it)"
version=$(pg_lsclusters --no-header | awk 'NR == 1 {print $1}')
[[ -n $version ]] || die "no PostgreSQL cluster to take the version from (scripts/setup.sh creates one)"

if ! pg_lsclusters --no-header | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {found = 1} END {exit !found}'; then
	[[ $(id -u) -eq 0 ]] || die "creating the $version/$name cluster needs root (pg_createcluster)"
	if pg_lsclusters --no-header | awk -v p="$port" '$3 == p {found = 1} END {exit !found}'; then
		die "port $port is taken by another cluster (pg_lsclusters); set BENCH_PG_PORT"
	fi
	log "creating PostgreSQL $version/$name on port $port"
	pg_createcluster --port "$port" "$version" "$name" >/dev/null
fi

conf=/etc/postgresql/$version/$name
changed=
set_conf() {
	if [[ $(pg_conftool -s "$version" "$name" show "$1" 2>/dev/null) != "$2" ]]; then
		[[ $(id -u) -eq 0 ]] || die "configuring $version/$name needs root"
		pg_conftool "$version" "$name" set "$1" "$2"
		changed=1
	fi
}
set_conf port "$port"
set_conf wal_level logical
set_conf max_replication_slots 10
set_conf max_wal_senders 10
hba=$'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust'
if [[ $(cat "$conf/pg_hba.conf") != "$hba" ]]; then
	[[ $(id -u) -eq 0 ]] || die "configuring $version/$name needs root"
	printf '%s\n' "$hba" >"$conf/pg_hba.conf"
	changed=1
fi

status=$(pg_lsclusters --no-header | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {print $4}')
if [[ $status == online* && -n $changed ]]; then
	log "restarting $version/$name for its new settings"
	pg_ctlcluster --skip-systemctl-redirect "$version" "$name" restart >&2
elif [[ $status != online* ]]; then
	log "starting PostgreSQL $version/$name"
	pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start >&2
fi
for _ in $(seq 1 60); do
	pg_isready -q -h 127.0.0.1 -p "$port" && break
	sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" || die "PostgreSQL $version/$name on port $port does not answer"
[[ $(psql -qAt -h 127.0.0.1 -p "$port" -U postgres -c 'SHOW wal_level') == logical ]] || die "$version/$name does not run with wal_level=logical"
echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
