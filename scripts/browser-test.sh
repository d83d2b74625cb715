#!/usr/bin/env bash
# `task browser-test`: the console's browser tests in a real headless
# Chromium against the real services. Installs what they need if missing
# (Debian's chromium and Node.js with apt-get, as root; playwright-core from
# npm into scripts/browser/node_modules, no browser download), starts the
# system with scripts/run.sh, runs scripts/browser/console.test.mjs, stops.
#
#   SCREENSHOT_DIR: where the screenshots go (default: the run's directory;
#   `task screenshots` sets docs/).
set -euo pipefail
cd "$(dirname "$0")/.."

export RUN_DIR=${RUN_DIR:-.browser-test}
export RUN_ORDER_ADDR=${RUN_ORDER_ADDR:-127.0.0.1:18280}
export RUN_PAYMENT_ADDR=${RUN_PAYMENT_ADDR:-127.0.0.1:18281}
export DEVKAFKA_PORT=${DEVKAFKA_PORT:-19292}
export RUN_ADMIN_TOKEN=${RUN_ADMIN_TOKEN:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export RUN_DATABASES=browser_test RUN_ORDER_FORWARDER=false LOG_LEVEL=warn

apt_install() {
	[[ $(id -u) == 0 ]] || { echo "browser-test: $* missing; install it (apt-get install $*) or run as root" >&2; exit 1; }
	apt-get install -y --no-install-recommends "$@" >/dev/null || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "$@" >/dev/null; }
}
[[ -x /usr/bin/chromium ]] || apt_install chromium
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
[[ -d scripts/browser/node_modules/playwright-core ]] || npm ci --prefix scripts/browser --no-audit --no-fund >/dev/null

rm -rf "$RUN_DIR"
bash scripts/run.sh >"$RUN_DIR.log" 2>&1 &
RUN_PID=$!
trap 'kill -TERM $RUN_PID 2>/dev/null; wait $RUN_PID 2>/dev/null || true' EXIT
for _ in $(seq 300); do
	[[ -f $RUN_DIR/ready ]] && break
	kill -0 $RUN_PID 2>/dev/null || { cat "$RUN_DIR.log" >&2; exit 1; }
	sleep 0.2
done
[[ -f $RUN_DIR/ready ]] || { echo "browser-test: the system did not start" >&2; cat "$RUN_DIR.log" >&2; exit 1; }

source "$RUN_DIR/env"
SCREENSHOT_DIR=${SCREENSHOT_DIR:-$RUN_DIR} \
	CONSOLE_URL=http://$RUN_ORDER_ADDR/console/ PAYMENT_URL=http://$RUN_PAYMENT_ADDR ADMIN_TOKEN=$RUN_ADMIN_TOKEN \
	BIN=$RUN_DIR/bin KAFKA_BROKERS=$KAFKA_BROKERS ORDER_DB=$ORDER_DB \
	node --test --test-reporter=spec scripts/browser/console.test.mjs ||
	{ echo "browser-test: failed; logs in $RUN_DIR/*.log" >&2; exit 1; }
