// Browser tests of the operator console, in a real headless Chromium
// (Debian's, driven by playwright-core), against the real services that
// scripts/browser-test.sh starts: the order service without its forwarder,
// which this test runs as its own process (`order forward`) so that it can
// stop it, the payment service and the development broker.
//
// Environment: CONSOLE_URL, ADMIN_TOKEN, BIN (the built programs),
// ORDER_DB, PAYMENT_URL, KAFKA_BROKERS, RUN_DIR (logs), SCREENSHOT_DIR
// (where the screenshots go).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run scripts/browser-test.sh)`);
  return v;
};
const CONSOLE = env("CONSOLE_URL").replace(/\/$/, "");
const TOKEN = env("ADMIN_TOKEN");
const BIN = env("BIN");
const PAYMENT = env("PAYMENT_URL");
const SHOTS = env("SCREENSHOT_DIR");
const RUN_DIR = env("RUN_DIR");
// How long a page may take to show what the pipeline did: the forwarder and
// the projector read only events older than every transaction open on the
// PostgreSQL server, which other programs on it may hold for a while.
const LIVE = 90_000;

let context, page, userDir, forwarder;
const pageErrors = [];

function startForwarder() {
  const log = openSync(path.join(RUN_DIR, "forwarder.log"), "a");
  forwarder = spawn(path.join(BIN, "order"), ["forward"], {
    env: { ...process.env, DATABASE_URL: env("ORDER_DB"), KAFKA_BROKERS: env("KAFKA_BROKERS") },
    stdio: ["ignore", log, log],
  });
}

async function stopForwarder() {
  const exited = new Promise((resolve) => forwarder.once("exit", resolve));
  forwarder.kill("SIGTERM");
  await exited;
  forwarder = undefined;
}

before(async () => {
  startForwarder();
  userDir = mkdtempSync(path.join(tmpdir(), "console-chromium-"));
  // A fresh profile (--user-data-dir) each run.
  context = await chromium.launchPersistentContext(userDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(LIVE);
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  // Errors such as a script's or a content-security-policy violation; a
  // page answering 4xx (a refused token) is no error of the page.
  page.on("console", (msg) => msg.type() === "error" && !/^Failed to load resource: .* status of 4\d\d/.test(msg.text()) && pageErrors.push(msg.text()));
  page.on("requestfailed", (r) => pageErrors.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on("response", (r) => r.status() === 404 && pageErrors.push(`${r.url()}: 404`));
});

after(async () => {
  await context?.close();
  if (forwarder) await stopForwarder();
  rmSync(userDir, { recursive: true, force: true });
  assert.deepEqual(pageErrors, [], "the pages logged errors (script or content-security-policy)");
});

const tokenBox = () => page.getByRole("textbox", { name: "Admin token" });

// placeOrder fills the console's form and returns the new order's id, from
// the order page the form leads to.
async function placeOrder(customer, unitPrice = "1999") {
  await page.goto(`${CONSOLE}/orders`);
  await page.getByLabel("Customer", { exact: true }).first().fill(customer);
  await page.getByLabel("Item (SKU)").fill("book");
  await page.getByLabel("Quantity").fill("2");
  await page.getByLabel("Unit price (cents)").fill(unitPrice);
  await page.getByRole("button", { name: "Place order" }).click();
  await page.waitForURL(/\/console\/orders\/[0-9a-f-]{36}$/);
  return page.url().split("/").pop();
}

// fitsWidth checks that the page needs no sideways scrolling at this width.
async function fitsWidth(width) {
  await page.setViewportSize({ width, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.ok(overflow <= 0, `${page.url()} is ${overflow}px wider than a ${width}px window`);
}

async function paymentAdmin(pathname) {
  const r = await fetch(`${PAYMENT}${pathname}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200, `GET ${pathname}`);
  return r.json();
}

test("an order placed through the form reaches paid on its page", async () => {
  const id = await placeOrder("browser");
  assert.match(await page.locator("#order-status").textContent(), /placed|paid/);
  // The page refreshes itself until the payment comes back.
  await page.locator('#order-status[data-status="paid"]').waitFor();
  await page.locator("#payment-status", { hasText: "succeeded" }).waitFor();
  await page.getByRole("heading", { name: "2. order.OrderPaid" }).waitFor();
  // Where the forwarder sent each event, found in Kafka.
  await page.locator('[data-kafka="order.events"]', { hasText: /partition \d+, offset \d+/ }).nth(1).waitFor();
  await page.locator('[data-kafka="payment.events"]', { hasText: /partition \d+, offset \d+/ }).nth(1).waitFor();
  await fitsWidth(390);
  await page.screenshot({ path: path.join(SHOTS, "console-order.png"), fullPage: true });
  assert.ok(id);
});

test("a bad order is refused on the form with the field named, and nothing is placed", async () => {
  await page.goto(`${CONSOLE}/orders`);
  await page.getByLabel("Quantity").fill("0");
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST"),
    page.getByRole("button", { name: "Place order" }).click(),
  ]);
  assert.equal(response.status(), 400);
  await page.getByRole("alert").filter({ hasText: "items[0].quantity" }).waitFor();
});

test("the overview shows the outbox lag above 0 while the forwarder is stopped, and 0 after it resumes", async () => {
  await stopForwarder();
  await placeOrder("while-stopped");
  await page.goto(`${CONSOLE}/`);
  const lag = page.locator('[data-outbox="order"]');
  await page.waitForFunction(() => Number(document.querySelector('[data-outbox="order"]')?.textContent) > 0);
  assert.ok(Number(await lag.textContent()) > 0);
  await page.getByText("order outbox lag").locator("..").getByText("behind").waitFor();

  startForwarder();
  // Nothing reloads the page but its own refresh.
  await page.waitForFunction(() => document.querySelector('[data-outbox="order"]')?.textContent === "0");
  await page.waitForFunction(() => document.querySelector('[data-lag="payment/order.events"]')?.textContent === "0");
  await fitsWidth(390);
  await page.screenshot({ path: path.join(SHOTS, "console-overview.png"), fullPage: true });
});

test("a poisoned message appears; a wrong token is refused and changes nothing; the right one requeues it", async () => {
  execFileSync(path.join(BIN, "devkafka"), ["produce", "--brokers", env("KAFKA_BROKERS"), "--topic", "order.events",
    "--key", "order-broken", "--header", "event_type=order.OrderPlaced", "--header", "schema_version=2",
    "--header", "event_id=browser-broken", '{"order_id": "broken", "note": "<script>alert(1)</script>", "total": 12']);

  // The overview counts it without a token (from the service's metrics).
  await page.goto(`${CONSOLE}/`);
  await page.getByRole("link", { name: "1 new" }).waitFor();

  // A wrong token is refused, and the page asks again.
  await page.goto(`${CONSOLE}/poison/payment`);
  await tokenBox().fill("not-the-token");
  await page.getByRole("button", { name: "Use this token" }).click();
  await page.getByRole("alert").filter({ hasText: "refused the admin token" }).waitFor();
  await tokenBox().waitFor();

  await tokenBox().fill(TOKEN);
  await page.getByRole("button", { name: "Use this token" }).click();
  const row = page.locator("tr[data-entry]").filter({ hasText: "order-broken" });
  await row.waitFor();
  assert.equal(await row.locator("[data-status]").textContent(), "new");
  assert.equal(await page.content().then((html) => html.includes(TOKEN)), false, "the page shows the token");
  await fitsWidth(390);
  await page.screenshot({ path: path.join(SHOTS, "console-poison.png"), fullPage: true });

  const id = await row.getAttribute("data-entry");
  await row.getByRole("link", { name: id }).click();
  await page.locator("pre.payload", { hasText: "<script>alert(1)</script>" }).waitFor(); // shown as text

  // A requeue with a token the service refuses does nothing.
  const url = new URL(CONSOLE);
  await context.addCookies([{ name: "console_admin_token", value: "revoked", domain: url.hostname, path: "/console/", httpOnly: true, sameSite: "Strict" }]);
  await page.getByRole("button", { name: "Requeue" }).click();
  await page.getByRole("alert").filter({ hasText: "nothing was done" }).waitFor();
  assert.equal((await paymentAdmin(`/v1/admin/poison/${id}`)).status, "new");

  // With the token: a dry run, then the requeue.
  await page.goto(`${CONSOLE}/poison/payment/${id}`);
  await tokenBox().fill(TOKEN);
  await page.getByRole("button", { name: "Use this token" }).click();
  await page.getByLabel("Dry run").check();
  await page.getByRole("button", { name: "Requeue" }).click();
  await page.getByRole("status").filter({ hasText: "would be published to order.events" }).waitFor();
  assert.equal((await paymentAdmin(`/v1/admin/poison/${id}`)).status, "new");
  await page.getByRole("button", { name: "Requeue" }).click();
  await page.getByRole("status").filter({ hasText: `Requeued ${id}` }).waitFor();
  await page.locator('#entry-status[data-status="requeued"]').waitFor();
  assert.equal((await paymentAdmin(`/v1/admin/poison/${id}`)).status, "requeued");

  await page.goto(`${CONSOLE}/poison/payment?status=requeued`);
  assert.equal(await page.locator(`tr[data-entry="${id}"] [data-status]`).textContent(), "requeued");
});

test("a projection rebuild shows its progress while it runs, its button disabled, and runs to done", async () => {
  // Hold the lock the rebuild's last step (the swap) takes, as a live
  // projector's batch would for a moment, so that the run waits there in
  // plain sight (the lock's name is order/adapters/projections' applyLockName).
  // psql holds it until its input ends and it closes the session.
  const holder = spawn("psql", ["-qX", env("ORDER_DB")], { stdio: ["pipe", "ignore", "inherit"] });
  holder.stdin.write("SELECT pg_advisory_lock(hashtextextended('order projection apply order_summaries', 0));\n");
  const released = new Promise((resolve) => holder.once("exit", resolve));
  try {
    const held = () => execFileSync("psql", ["-qXtA", env("ORDER_DB"), "-c",
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"]).toString().trim();
    for (let i = 0; held() === "0"; i++) {
      assert.ok(i < 100, "psql did not take the lock");
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.goto(`${CONSOLE}/projections`);
    if (await tokenBox().count()) {
      await tokenBox().fill(TOKEN);
      await page.getByRole("button", { name: "Use this token" }).click();
      await page.getByText("An admin token is set").waitFor();
    }
    const section = page.locator("section.projection").filter({ has: page.getByRole("heading", { name: "order_summaries" }) });
    await section.getByRole("button", { name: "Rebuild order_summaries" }).click();
    await page.waitForURL(`${CONSOLE}/projections`);
    await section.locator('[data-rebuild="running"]', { hasText: /swapping, \d+ of about \d+ events/ }).waitFor();
    await section.locator("progress").waitFor();
    assert.equal(await section.getByRole("button", { name: "Rebuild order_summaries" }).isDisabled(), true);
    await page.screenshot({ path: path.join(SHOTS, "console-projections.png"), fullPage: true });
  } finally {
    holder.stdin.end();
    await released;
  }
  // The page refreshes itself until the run is done.
  await page.locator("section.projection").filter({ has: page.getByRole("heading", { name: "order_summaries" }) })
    .locator('[data-rebuild="done"]', { hasText: /done: \d+ events/ }).waitFor();
});
