#!/usr/bin/env bash
# Prepares a machine to run the demo and the tests: PostgreSQL installed and
# running on 127.0.0.1:5432, and Task (the Taskfile's runner) on the PATH.
# Go modules are not downloaded here: each build fetches the modules of the
# packages it builds, and no more (a `go mod download` would fetch every
# module that the go.mod files list). Safe to run again; every task runs it
# first.
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

# Task, the release the Taskfile is written for. Prebuilt where it can be:
# PyPI's go-task-bin (a repackaging of Task's release binary, by
# github.com/Bing-su/pip-binary-factory) for linux/amd64, pinned by the
# wheel's hash; building Task from source costs about a minute of CPU, a
# third of a first demo. Elsewhere, or without pip, `go install` builds the
# same release.
TASK_VERSION=3.39.2
TASK_WHEEL_SHA256=80dc8a1ffdaf3021bea8d0df85f101af2c7ec0d50d704f4e26de9283eb80c6fa # manylinux x86_64
if ! command -v task >/dev/null || [[ $(task --version 2>/dev/null) != *"$TASK_VERSION "* ]]; then
	bin=/usr/local/bin
	[[ -w $bin ]] || bin=$HOME/.local/bin
	mkdir -p "$bin"
	wheel=$(mktemp -d)
	echo "go-task-bin==$TASK_VERSION --hash=sha256:$TASK_WHEEL_SHA256" >"$wheel/requirements.txt"
	if [[ $(uname -sm) == "Linux x86_64" ]] && python3 -m pip download --quiet --disable-pip-version-check \
		--no-deps --only-binary=:all: --require-hashes -r "$wheel/requirements.txt" --dest "$wheel" 2>/dev/null; then
		log "installing Task $TASK_VERSION into $bin (PyPI's go-task-bin, hash checked)"
		python3 - "$wheel"/go_task_bin-*.whl "$bin/task" "go_task_bin-$TASK_VERSION.data/scripts/task" <<'PY'
import os, sys, zipfile
wheel, target, member = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(target + ".tmp", "wb") as out:
    out.write(z.read(member))
os.chmod(target + ".tmp", 0o755)
os.replace(target + ".tmp", target)
PY
	else
		log "building Task $TASK_VERSION into $bin with go install (no prebuilt one for this machine)"
		GOBIN=$bin GOFLAGS= go install "github.com/go-task/task/v3/cmd/task@v$TASK_VERSION"
	fi
	rm -rf "$wheel"
	command -v task >/dev/null || log "add $bin to your PATH to run task"
	log "$("$bin/task" --version)"
fi
