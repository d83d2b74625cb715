# What demo.sh and apitest.sh share; they source it after defining die.
# PostgreSQL: DATABASE_URL names the server (default: the local one).

BASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
export PGOPTIONS=--client-min-messages=warning

# with_db NAME: BASE_URL with the database NAME.
with_db() { sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/$1#" <<<"$BASE_URL"; }

# reachable HOST:PORT[,...]: a TCP connection to the last address opens.
reachable() { local hp=${1##*,}; timeout 1 bash -c "</dev/tcp/${hp%:*}/${hp##*:}" 2>/dev/null; }

# fresh_databases BIN ORDERS PAYMENTS: drops the databases ORDERS and
# PAYMENTS and creates them anew with the migrations of BIN/order and
# BIN/payment.
fresh_databases() {
	local bin=$1 orders=$2 payments=$3 db
	for db in "$orders" "$payments"; do
		psql -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || die "cannot reach PostgreSQL at ${BASE_URL%%\?*}"
	done
	LOG_LEVEL=warn DATABASE_URL=$(with_db "$orders") "$bin/order" migrate
	LOG_LEVEL=warn DATABASE_URL=$(with_db "$payments") "$bin/payment" migrate
}
