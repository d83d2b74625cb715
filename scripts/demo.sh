#!/usr/bin/env bash
# The demo: the whole pipeline on this machine, without Docker.
#   PostgreSQL (DATABASE_URL, else the local server) with two fresh databases,
#   the development Kafka broker (unless KAFKA_BROKERS points to a reachable
#   one), the order and payment services; then it places orders over HTTP,
#   poisons one message, waits for the payments, prints a summary and stops
#   everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR=.demo
ORDER_ADDR=${DEMO_ORDER_ADDR:-127.0.0.1:8080}
PAYMENT_ADDR=${DEMO_PAYMENT_ADDR:-127.0.0.1:8081}
APPROVE_LIMIT=100000 # 1,000.00: larger orders are declined

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }
source scripts/lib.sh

PIDS=()
cleanup() {
	local code=$?
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	[[ $code -eq 0 ]] || echo "demo: failed; logs are in $DEMO_DIR/*.log" >&2
}
trap cleanup EXIT

rm -rf "$DEMO_DIR" && mkdir -p "$DEMO_DIR/bin"
say "Building order, payment, devkafka and tracetree"
go build -o "$DEMO_DIR/bin/" ./order/cmd/order ./payment/cmd/payment ./shared/devtools/cmd/devkafka ./shared/devtools/cmd/tracetree
BIN=$DEMO_DIR/bin

say "PostgreSQL: fresh databases demo_orders and demo_payments"
ORDER_DB=$(with_db demo_orders)
PAYMENT_DB=$(with_db demo_payments)
fresh_databases "$BIN" demo_orders demo_payments

if [[ -n "${KAFKA_BROKERS:-}" ]] && reachable "$KAFKA_BROKERS"; then
	say "Kafka: using $KAFKA_BROKERS"
else
	[[ -z "${KAFKA_BROKERS:-}" ]] || echo "demo: KAFKA_BROKERS=$KAFKA_BROKERS is not reachable; starting the development broker instead"
	port=${DEVKAFKA_PORT:-9092}
	KAFKA_BROKERS=127.0.0.1:$port
	reachable "$KAFKA_BROKERS" && die "port $port is taken; set DEVKAFKA_PORT or KAFKA_BROKERS"
	say "Kafka: starting the development broker on $KAFKA_BROKERS"
	"$BIN/devkafka" --port "$port" --data-dir "$DEMO_DIR/kafka-data" >"$DEMO_DIR/devkafka.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 50); do reachable "$KAFKA_BROKERS" && break; sleep 0.1; done
	reachable "$KAFKA_BROKERS" || die "the development broker did not start (see $DEMO_DIR/devkafka.log)"
fi
export KAFKA_BROKERS

say "Starting order (HTTP on $ORDER_ADDR, with its forwarder) and payment (HTTP on $PAYMENT_ADDR)"
reachable "$ORDER_ADDR" && die "$ORDER_ADDR is taken; set DEMO_ORDER_ADDR"
reachable "$PAYMENT_ADDR" && die "$PAYMENT_ADDR is taken; set DEMO_PAYMENT_ADDR"
# Spans go to stdout (the console exporter), logs to stderr.
export OTEL_TRACES_EXPORTER=console
DATABASE_URL=$ORDER_DB HTTP_ADDR=$ORDER_ADDR "$BIN/order" serve >"$DEMO_DIR/order.spans" 2>"$DEMO_DIR/order.log" &
ORDER_PID=$!
DATABASE_URL=$PAYMENT_DB GATEWAY_APPROVE_LIMIT=$APPROVE_LIMIT PAYMENT_HTTP_ADDR=$PAYMENT_ADDR \
	"$BIN/payment" serve >"$DEMO_DIR/payment.spans" 2>"$DEMO_DIR/payment.log" &
PAYMENT_PID=$!
PIDS+=("$ORDER_PID" "$PAYMENT_PID")
unset OTEL_TRACES_EXPORTER
for _ in $(seq 100); do curl -sf "http://$ORDER_ADDR/livez" >/dev/null && break; sleep 0.1; done
curl -sf "http://$ORDER_ADDR/livez" >/dev/null || die "the order service did not start (see $DEMO_DIR/order.log)"
for _ in $(seq 100); do curl -sf "http://$PAYMENT_ADDR/livez" >/dev/null && break; sleep 0.1; done
curl -sf "http://$PAYMENT_ADDR/livez" >/dev/null || die "the payment service did not start (see $DEMO_DIR/payment.log)"

place() {
	local body=$1
	echo "\$ curl -X POST http://$ORDER_ADDR/v1/orders -H 'Content-Type: application/json' -d '$body'" >&2
	curl -sS -X POST "http://$ORDER_ADDR/v1/orders" -H 'Content-Type: application/json' -d "$body" |
		sed -E 's/.*"order_id":"([^"]+)".*/\1/'
}
status_of() { curl -sS "http://$ORDER_ADDR/v1/orders/$1" | sed -E 's/.*"status":"([^"]+)".*/\1/'; }
wait_for() { # order id, status
	for _ in $(seq 300); do [[ $(status_of "$1") == "$2" ]] && return 0; sleep 0.1; done
	die "order $1 did not reach $2 (it is $(status_of "$1"))"
}

say "Placing orders over HTTP"
APPROVED=$(place '{"customer_id":"alice","currency":"EUR","items":[{"sku":"book","quantity":2,"unit_price":1999},{"sku":"pen","quantity":3,"unit_price":250}]}')
DECLINED=$(place '{"customer_id":"bob","currency":"EUR","items":[{"sku":"laptop","quantity":1,"unit_price":249900}]}')
REFUNDED=$(place '{"customer_id":"dave","currency":"EUR","items":[{"sku":"lamp","quantity":1,"unit_price":3900}]}')
BAD='{"customer_id":"carol","currency":"EUR","items":[{"sku":"mug","quantity":0,"unit_price":900}]}'
echo "\$ curl -X POST http://$ORDER_ADDR/v1/orders -H 'Content-Type: application/json' -d '$BAD'   # bad input: 400, nothing stored"
curl -sS -X POST "http://$ORDER_ADDR/v1/orders" -H 'Content-Type: application/json' -d "$BAD"

say "Waiting for the payment outcomes to come back to the orders"
wait_for "$APPROVED" paid && echo "order $APPROVED: paid"
wait_for "$DECLINED" payment_failed && echo "order $DECLINED: payment_failed (over the approval limit)"
wait_for "$REFUNDED" paid && echo "order $REFUNDED: paid"

say "Cancelling the paid order $REFUNDED: the payment service refunds it"
echo "\$ curl -X POST http://$ORDER_ADDR/v1/orders/$REFUNDED/cancel -H 'If-Match: \"2\"'"
curl -sS -X POST "http://$ORDER_ADDR/v1/orders/$REFUNDED/cancel" -H 'If-Match: "2"'
wait_for "$REFUNDED" refunded && echo "order $REFUNDED: refunded"
echo "\$ curl -X POST http://$ORDER_ADDR/v1/orders/$REFUNDED/cancel   # again: 409"
curl -sS -X POST "http://$ORDER_ADDR/v1/orders/$REFUNDED/cancel"

say "Injecting a malformed OrderPlaced on order.events (truncated JSON)"
"$BIN/devkafka" produce --brokers "$KAFKA_BROKERS" --topic order.events --key order-broken \
	--header event_type=order.OrderPlaced --header schema_version=2 --header event_id=demo-broken '{"order_id": "broken", "total": 12'
for _ in $(seq 300); do
	DATABASE_URL=$PAYMENT_DB "$BIN/payment" poison list --json | grep -q demo-broken && break
	sleep 0.1
done
DATABASE_URL=$PAYMENT_DB "$BIN/payment" poison list --json | grep -q demo-broken ||
	die "the malformed message was not poisoned (see $DEMO_DIR/payment.log)"

say "Orders (GET /v1/orders/{id})"
for id in "$APPROVED" "$DECLINED" "$REFUNDED"; do curl -sS "http://$ORDER_ADDR/v1/orders/$id"; done
say "The refunded order's events (GET /v1/orders/{id}/events)"
curl -sS "http://$ORDER_ADDR/v1/orders/$REFUNDED/events" | grep -oE '"type":"[^"]+"|"stream_version":[0-9]+' | paste -sd' ' | sed -E 's/ ("type")/\n\1/g'
echo
say "Read models: GET /v1/orders (order_summaries), order projections, order replay"
echo "\$ curl 'http://$ORDER_ADDR/v1/orders?limit=3'"
curl -sS "http://$ORDER_ADDR/v1/orders?limit=3"
echo
psql -q "$ORDER_DB" -c "SELECT day, status, currency, orders, to_char(revenue::numeric / 100, 'FM999G990D00') AS revenue FROM order_daily_stats ORDER BY status"
DATABASE_URL=$ORDER_DB LOG_LEVEL=warn "$BIN/order" projections
DATABASE_URL=$ORDER_DB LOG_LEVEL=warn "$BIN/order" replay --all </dev/null

say "Payments (the payment service's event store)"
psql -q "$PAYMENT_DB" -c "SELECT substr(stream_id, 9) AS order_id, stream_version AS v, event_type,
	to_char((payload->>'amount')::numeric / 100, 'FM999G990D00') || ' ' || coalesce(payload->>'currency', '') AS amount,
	coalesce(payload->>'reason', '') AS reason FROM events ORDER BY stream_id, stream_version"
say "Poison queue (payment poison list), kept in the payment database"
DATABASE_URL=$PAYMENT_DB "$BIN/payment" poison list
echo "\$ curl -s http://$PAYMENT_ADDR/metrics | grep '^payment_'"
curl -sS "http://$PAYMENT_ADDR/metrics" | grep '^payment_'
echo "(inspect one with 'payment poison show ID'; once the cause is fixed, 'payment poison requeue ID',"
echo " or set it aside with 'payment poison discard ID --reason TEXT')"

say "Stopping the services (a graceful stop flushes their spans)"
kill -TERM "$ORDER_PID" "$PAYMENT_PID"
wait "$ORDER_PID" "$PAYMENT_PID" || true
say "One trace per order: $REFUNDED from the HTTP request through both services"
"$BIN/tracetree" --attr "order.id=$REFUNDED" "$DEMO_DIR/order.spans" "$DEMO_DIR/payment.spans"

say "Done: stopping everything the demo started"
