#!/usr/bin/env bash
# `task run`: the development broker and both services on this machine, with
# the operator console, until Ctrl-C. Fresh databases and broker data each
# time; logs in $RUN_DIR, and what it started in $RUN_DIR/env once ready.
#
#   RUN_DIR (.run), RUN_DATABASES (run: run_orders, run_payments), RUN_ORDER_ADDR (127.0.0.1:8080), RUN_PAYMENT_ADDR
#   (127.0.0.1:8081), DEVKAFKA_PORT (9092), RUN_ADMIN_TOKEN (random), and
#   RUN_ORDER_FORWARDER=false to run the order service without its
#   forwarder (the browser test runs `order forward` itself, to stop it).
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_DIR=${RUN_DIR:-.run}
ORDER_ADDR=${RUN_ORDER_ADDR:-127.0.0.1:8080}
PAYMENT_ADDR=${RUN_PAYMENT_ADDR:-127.0.0.1:8081}
PORT=${DEVKAFKA_PORT:-9092}
TOKEN=${RUN_ADMIN_TOKEN:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
BASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
export PGOPTIONS=--client-min-messages=warning

die() { echo "run: $*" >&2; exit 1; }
with_db() { sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/$1#" <<<"$BASE_URL"; }
reachable() { timeout 1 bash -c "</dev/tcp/${1%:*}/${1##*:}" 2>/dev/null; }
wait_for() { # what, address, log
	for _ in $(seq 150); do curl -sf "http://$2/livez" >/dev/null && return 0; sleep 0.1; done
	die "$1 did not start (see $3)"
}

PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 0' INT TERM

for addr in "$ORDER_ADDR" "$PAYMENT_ADDR" "127.0.0.1:$PORT"; do
	reachable "$addr" && die "$addr is taken (set RUN_ORDER_ADDR, RUN_PAYMENT_ADDR or DEVKAFKA_PORT)"
done
rm -rf "$RUN_DIR" && mkdir -p "$RUN_DIR/bin"
go build -o "$RUN_DIR/bin/" ./order/cmd/order ./payment/cmd/payment ./shared/devtools/cmd/devkafka
BIN=$RUN_DIR/bin
DBS=${RUN_DATABASES:-run}
ORDER_DB=$(with_db "${DBS}_orders")
PAYMENT_DB=$(with_db "${DBS}_payments")
for db in "${DBS}_orders" "${DBS}_payments"; do
	psql -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || die "cannot reach PostgreSQL at ${BASE_URL%%\?*}"
done

export KAFKA_BROKERS=127.0.0.1:$PORT LOG_LEVEL=${LOG_LEVEL:-info}
"$BIN/devkafka" --port "$PORT" --data-dir "$RUN_DIR/kafka-data" >"$RUN_DIR/devkafka.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do reachable "$KAFKA_BROKERS" && break; sleep 0.1; done
reachable "$KAFKA_BROKERS" || die "the development broker did not start (see $RUN_DIR/devkafka.log)"

DATABASE_URL=$ORDER_DB "$BIN/order" migrate
DATABASE_URL=$PAYMENT_DB "$BIN/payment" migrate
DATABASE_URL=$ORDER_DB HTTP_ADDR=$ORDER_ADDR ORDER_ADMIN_TOKEN=$TOKEN CONSOLE_PAYMENT_URL=http://$PAYMENT_ADDR \
	FORWARDER_ENABLED=${RUN_ORDER_FORWARDER:-true} "$BIN/order" serve 2>"$RUN_DIR/order.log" &
PIDS+=($!)
DATABASE_URL=$PAYMENT_DB PAYMENT_HTTP_ADDR=$PAYMENT_ADDR PAYMENT_ADMIN_TOKEN=$TOKEN \
	"$BIN/payment" serve 2>"$RUN_DIR/payment.log" &
PIDS+=($!)
wait_for "the order service" "$ORDER_ADDR" "$RUN_DIR/order.log"
wait_for "the payment service" "$PAYMENT_ADDR" "$RUN_DIR/payment.log"

cat <<EOF

  Console:      http://$ORDER_ADDR/console/
  Admin token:  $TOKEN   (for the console's actions and both admin APIs)
  Order API:    http://$ORDER_ADDR/v1/orders     Payment API: http://$PAYMENT_ADDR
  Kafka:        $KAFKA_BROKERS (development broker)   Logs: $RUN_DIR/*.log
  Databases:    $ORDER_DB, $PAYMENT_DB

Running until Ctrl-C.
EOF
printf 'ORDER_DB=%q\nPAYMENT_DB=%q\nKAFKA_BROKERS=%q\n' "$ORDER_DB" "$PAYMENT_DB" "$KAFKA_BROKERS" >"$RUN_DIR/env"
touch "$RUN_DIR/ready"
wait -n "${PIDS[@]}" || true
die "a process stopped (see $RUN_DIR/*.log)"
