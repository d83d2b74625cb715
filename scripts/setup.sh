#!/usr/bin/env bash
# Prepares a machine to run the demo and the tests: PostgreSQL installed and
# running on 127.0.0.1:5432. Go modules are not downloaded here: each build
# fetches the modules of the packages it builds, and no more (a
# `go mod download` would fetch every module that the go.mod files list).
# Safe to run again; `go tool task demo` and `go tool task test` run it first.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup: $*"; }

# The demo talks to the services with curl and to the databases with psql;
# the tests produce with kcat as an independent Kafka client.
missing=()
command -v curl >/dev/null || missing+=(curl)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v kcat >/dev/null || missing+=(kcat) # a librdkafka client: the partitioner test
if ((${#missing[@]})); then
	[[ $(id -u) -eq 0 ]] || { echo "setup: please install ${missing[*]}" >&2; exit 1; }
	log "installing ${missing[*]} from Debian's packages"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ -n "${DATABASE_URL:-}" ]]; then
	log "using DATABASE_URL; not managing a local PostgreSQL"
else
	if ! command -v pg_lsclusters >/dev/null; then
		if [[ $(id -u) -ne 0 ]]; then
			echo "setup: PostgreSQL is not installed; install it (Debian: apt-get install postgresql) or set DATABASE_URL" >&2
			exit 1
		fi
		log "installing PostgreSQL from Debian's packages"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
	fi
	# The cluster on 5432, where the defaults look (a benchmark may have
	# created others); else the first.
	read -r version cluster port status _ < <(pg_lsclusters --no-header | awk '$3 == 5432' | head -n1)
	[[ -n "${version:-}" ]] || read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n1)
	# A development server: the defaults (postgres@127.0.0.1, no password)
	# need local TCP connections trusted. Debian's own pg_hba.conf asks for a
	# password, whether we installed it or the machine came with it.
	hba=/etc/postgresql/$version/$cluster/pg_hba.conf
	if [[ $(id -u) -eq 0 && -f $hba ]] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
		log "trusting local TCP connections in $hba (a development server)"
		sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
		[[ "$status" == online* ]] && pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" reload
	fi
	if [[ "$status" != online* ]]; then
		log "starting PostgreSQL $version/$cluster"
		pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
	fi
	for _ in $(seq 1 60); do
		pg_isready -q -h 127.0.0.1 -p "$port" && break
		sleep 0.5
	done
	pg_isready -q -h 127.0.0.1 -p "$port" || { echo "setup: PostgreSQL on port $port does not answer" >&2; exit 1; }
	log "PostgreSQL $version is running on 127.0.0.1:$port"
fi

# Task is a tool of the scripts/task module (go.work): `go tool task` builds
# it on first use.
