#!/usr/bin/env bash
# Property-based tests of both HTTP APIs from their OpenAPI documents, with
# schemathesis (PyPI): the order and payment services run as processes on
# fresh databases and the development broker; schemathesis generates
# requests from each /openapi.yaml (valid and invalid ones), and fails on any
# 5xx and on any response the document does not describe. Bounded: at most
# APITEST_MAX_EXAMPLES examples per operation. Everything it started is
# stopped at the end; logs are left in .apitest/.
#
#   APITEST_MAX_EXAMPLES  examples per operation (default 30)
#   APITEST_SEED          schemathesis seed, to replay a run (default: random)
#   DATABASE_URL          the PostgreSQL server to create the databases on (default: local)
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=.apitest
SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${APITEST_MAX_EXAMPLES:-30}
TOKEN=apitest-admin-token

die() { echo "apitest: $*" >&2; exit 1; }
source scripts/lib.sh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

mkdir -p "$DIR"
VENV=$DIR/venv-$SCHEMATHESIS_VERSION
if [[ ! -x $VENV/bin/schemathesis ]]; then
	echo "apitest: installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $VENV"
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

PIDS=()
cleanup() {
	local code=$?
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$DIR/kafka-data"
	[[ $code -eq 0 ]] || echo "apitest: failed; logs are in $DIR/*.log" >&2
}
trap cleanup EXIT

go build -o "$DIR/bin/" ./order/cmd/order ./payment/cmd/payment ./shared/devtools/cmd/devkafka
BIN=$DIR/bin
ORDER_DB=$(with_db apitest_orders)
PAYMENT_DB=$(with_db apitest_payments)
fresh_databases "$BIN" apitest_orders apitest_payments

KAFKA=127.0.0.1:$(free_port)
"$BIN/devkafka" --port "${KAFKA##*:}" --data-dir "$DIR/kafka-data" >"$DIR/devkafka.log" 2>&1 &
PIDS+=($!)
ORDER_ADDR=127.0.0.1:$(free_port)
PAYMENT_ADDR=127.0.0.1:$(free_port)
export KAFKA_BROKERS=$KAFKA LOG_LEVEL=warn
DATABASE_URL=$ORDER_DB HTTP_ADDR=$ORDER_ADDR ORDER_ADMIN_TOKEN=$TOKEN "$BIN/order" serve >"$DIR/order.log" 2>&1 &
PIDS+=($!)
DATABASE_URL=$PAYMENT_DB PAYMENT_HTTP_ADDR=$PAYMENT_ADDR PAYMENT_ADMIN_TOKEN=$TOKEN "$BIN/payment" serve >"$DIR/payment.log" 2>&1 &
PIDS+=($!)
for addr in "$ORDER_ADDR" "$PAYMENT_ADDR"; do
	for _ in $(seq 150); do curl -sf "http://$addr/readyz" >/dev/null && break; sleep 0.2; done
	curl -sf "http://$addr/readyz" >/dev/null || die "the service on $addr is not ready (see $DIR/*.log)"
done

# not_a_server_error and the conformance checks (status code, content type,
# headers, schema) on every response; the negative cases are requests the
# document rules out, which must be answered with a 4xx.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection
SEED=${APITEST_SEED:-$RANDOM}
status=0
for api in "order $ORDER_ADDR" "payment $PAYMENT_ADDR"; do
	read -r name addr <<<"$api"
	echo "apitest: $name API at http://$addr/openapi.yaml, $MAX_EXAMPLES examples per operation, seed $SEED"
	"$VENV/bin/schemathesis" run "http://$addr/openapi.yaml" --url "http://$addr" \
		--checks "$CHECKS" --max-examples "$MAX_EXAMPLES" --seed "$SEED" --phases examples,coverage,fuzzing \
		--header "Authorization: Bearer $TOKEN" --request-timeout 10 --workers 1 --no-color \
		--report junit,har --report-junit-path "$DIR/$name-junit.xml" --report-har-path "$DIR/$name.har" || status=1
done
# Nothing is stored for a refused request: the order database holds one
# OrderPlaced per 201 to POST /v1/orders (not counting idempotent replays).
placed=$(python3 - "$DIR/order.har" <<'PY'
import json, sys
entries = json.load(open(sys.argv[1]))["log"]["entries"]
print(sum(1 for e in entries
          if e["request"]["method"] == "POST" and e["request"]["url"].split("?")[0].endswith("/v1/orders")
          and e["response"]["status"] == 201
          and not any(h["name"].lower() == "idempotent-replayed" for h in e["response"]["headers"])))
PY
)
stored=$(psql -tA "$ORDER_DB" -c "SELECT count(*) FROM events WHERE event_type = 'order.OrderPlaced'")
echo "apitest: $placed orders placed (201), $stored OrderPlaced stored"
if [[ $placed != "$stored" ]]; then
	echo "apitest: the order database holds $stored orders for $placed accepted requests" >&2
	status=1
fi
# The services answered everything: none of them may have logged a failed request.
if grep -h '"request failed"' "$DIR/order.log" "$DIR/payment.log"; then
	echo "apitest: a request failed inside a service (logged above)" >&2
	status=1
fi
exit $status
