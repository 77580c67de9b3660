// Browser tests of Kite's web UI: a real `kite server` on 127.0.0.1 (temp data
// folder, the repository's flows) driven in headless Chromium by playwright-core.
//
//   KITE_BIN        the kite binary (default target/release/kite)
//   KITE_CHROMIUM   Chromium (default /usr/bin/chromium)
//   UI_SCREENSHOTS  folder for the screenshots (default: a temp folder; the docs'
//                   images are made with UI_SCREENSHOTS=docs/images)

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const KITE = resolve(ROOT, process.env.KITE_BIN || "target/release/kite");
const CHROMIUM = process.env.KITE_CHROMIUM || "/usr/bin/chromium";
const WORK = mkdtempSync(join(tmpdir(), "kite-ui-"));
const SHOTS = resolve(ROOT, process.env.UI_SCREENSHOTS || join(WORK, "screenshots"));
mkdirSync(SHOTS, { recursive: true });
const TIMEOUT = 15000;

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** A `kite server` of this test, stopped by its PID. */
async function startKite(env = {}) {
  const port = await freePort();
  const data = join(WORK, `data-${port}`);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("KITE_")));
  const proc = spawn(KITE, ["server", "--bind", "127.0.0.1", "--port", String(port), "--data", data,
    "--flows", join(ROOT, "flows"), "--workers", "2"], { env: { ...clean, KITE_LOG: "warn", ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr.on("data", (d) => (log += d));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      if ((await fetch(`${base}/ping`)).ok) return { base, proc, stop: () => stop(proc) };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  stop(proc);
  throw new Error(`kite server did not start:\n${log}`);
}

function stop(proc) {
  if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, "SIGTERM");
}

let browser;
let kite;

/** A page that fails the test on any script error or unexpected failed request. */
async function openPage(options = {}, { allowStatus = [] } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400 && !allowStatus.includes(r.status())) problems.push(`${r.status()} ${r.url()}`);
  });
  page.done = async () => {
    await context.close();
    assert.deepEqual(problems, [], "no console errors and no failed requests");
  };
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

async function expectState(page, state) {
  await page.locator("#execution-state").getByText(state, { exact: true }).waitFor({ timeout: 20000 });
}

before(async () => {
  // playwright-core gives each launch a new empty profile (--user-data-dir in a temp folder).
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  kite = await startKite();
});

after(async () => {
  await browser?.close();
  kite?.stop();
  rmSync(WORK, { recursive: true, force: true, maxRetries: 3 });
});

describe("web UI", () => {
  test("flow list, hello-world, Execute with a greeting: SUCCESS and the log line", async () => {
    const page = await openPage();
    await page.goto(`${kite.base}/`);
    await page.waitForURL(/\/ui\/flows$/);
    await page.getByRole("heading", { name: "Flows", level: 1 }).waitFor();
    const link = page.getByRole("link", { name: "hello-world", exact: true });
    await link.waitFor();
    const row = page.locator("tr", { has: link });
    await row.locator(".chip-webhook").waitFor();
    await row.getByText("never run").waitFor();
    // The first page, everything it loaded (page, modules, styles, icon and API calls).
    const bytes = await page.evaluate(() => [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
      .reduce((sum, e) => sum + e.transferSize, 0));
    console.log(`first page transferred: ${bytes} bytes`);
    assert.ok(bytes > 10000 && bytes < 200 * 1024, `first page transferred ${bytes} bytes`);

    await link.click();
    await page.waitForURL(/\/ui\/flows\/edit\/dev\/hello-world$/);
    await page.getByText("/api/v1/executions/webhook/dev/hello-world/test1234").first().waitFor();
    await page.getByText(/curl -X POST '.*\/webhook\/dev\/hello-world\/test1234'/).waitFor();
    await shot(page, "flow");

    // Escape closes the dialog and gives the focus back to the button.
    await page.getByRole("button", { name: "Execute", exact: true }).click();
    await page.getByRole("dialog").waitFor();
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "detached" });
    assert.equal(await page.evaluate(() => document.activeElement?.id), "execute");

    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog");
    const greeting = dialog.getByLabel("greeting");
    assert.equal(await greeting.inputValue(), "hello", "the default is prefilled");
    await greeting.fill("hello from the browser");
    await dialog.getByRole("button", { name: "Add a label" }).click();
    await dialog.getByLabel("Label 1 key").fill("team");
    await dialog.getByLabel("Label 1 value").fill("ui");
    await shot(page, "execute-dialog");
    await dialog.getByRole("button", { name: "Execute", exact: true }).click();
    await page.waitForURL(/\/ui\/executions\/dev\/hello-world\/[A-Za-z0-9]+$/);
    await expectState(page, "SUCCESS");
    await page.locator(".log .msg", { hasText: "hello from the browser" }).waitFor();
    await page.locator(".gantt li", { hasText: "hello" }).locator(".bar.state-success").waitFor();
    await page.getByRole("cell", { name: "greeting" }).waitFor();
    await page.locator(".chip", { hasText: "team: ui" }).waitFor();
    await shot(page, "execution");

    // Replay: a new execution that names the first one.
    const first = page.url().split("/").pop();
    await page.getByRole("button", { name: "Replay" }).click();
    await page.waitForURL((u) => !u.pathname.endsWith(first));
    await expectState(page, "SUCCESS");
    await page.locator(".summary").getByRole("link", { name: first }).waitFor();
    await page.done();
  });

  test("a FILE input is uploaded and its content logged", async () => {
    const page = await openPage();
    await page.goto(`${kite.base}/ui/flows/edit/dev/file-input`);
    await page.getByRole("button", { name: "Execute", exact: true }).click();
    const dialog = page.getByRole("dialog");
    await dialog.locator('[name="myfile"]').setInputFiles({
      name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("content uploaded from the browser"),
    });
    await dialog.getByRole("button", { name: "Execute", exact: true }).click();
    await page.waitForURL(/\/ui\/executions\/dev\/file-input\//);
    await expectState(page, "SUCCESS");
    await page.locator(".log .msg", { hasText: "content uploaded from the browser" }).waitFor();
    // The input is a download link to the stored file.
    const link = page.getByRole("link", { name: /notes\.txt/ });
    const href = await link.getAttribute("href");
    assert.match(href, /^\/api\/v1\/executions\/[A-Za-z0-9]+\/file\?path=kestra/);
    const body = await page.evaluate(async (u) => (await fetch(u)).text(), href);
    assert.equal(body, "content uploaded from the browser");
    await page.done();
  });

  test("a FILE input over 4 MiB is uploaded on its own, then named by its staged URI", async () => {
    const page = await openPage();
    const puts = [];
    page.on("request", (r) => {
      if (r.method() === "PUT") puts.push(new URL(r.url()).pathname);
    });
    await page.goto(`${kite.base}/ui/flows/edit/dev/file-input`);
    await page.getByRole("button", { name: "Execute", exact: true }).click();
    const dialog = page.getByRole("dialog");
    const content = `staged from the browser\n${"x".repeat(4 * 1024 * 1024)}`;
    await dialog.locator('[name="myfile"]').setInputFiles({
      name: "big.txt", mimeType: "text/plain", buffer: Buffer.from(content),
    });
    await dialog.getByRole("button", { name: "Execute", exact: true }).click();
    await page.waitForURL(/\/ui\/executions\/dev\/file-input\//);
    await expectState(page, "SUCCESS");
    assert.equal(puts.length, 1);
    assert.match(puts[0], /^\/api\/v1\/executions\/dev\/file-input\/uploads\/[A-Za-z0-9]+\/big\.txt$/);
    const id = new URL(page.url()).pathname.split("/").pop();
    const [execution, logs] = await page.evaluate(async (id) => Promise.all([
      fetch(`/api/v1/executions/${id}`).then((r) => r.json()),
      fetch(`/api/v1/logs/${id}`).then((r) => r.json()),
    ]), id);
    assert.match(execution.inputs.myfile, /^kestra:\/\/\/dev\/file-input\/uploads\/[A-Za-z0-9]+\/big\.txt$/);
    assert.equal(logs[0].message, content);
    await page.done();
  });

  test("a bad INT shows Kestra's message next to the field; a good one runs", async () => {
    const page = await openPage({}, { allowStatus: [422] });
    await page.goto(`${kite.base}/ui/flows/edit/dev/inputs`);
    await page.getByRole("button", { name: "Execute", exact: true }).click();
    const dialog = page.getByRole("dialog");
    const input = (name) => dialog.locator(`[name="${name}"]`);
    // One control per type, defaults prefilled, required marked.
    const types = { count: "number", ratio: "number", enabled: "checkbox", day: "date", at: "datetime-local",
      time: "time", wait: "text", contact: "email", site: "url", attachment: "file" };
    for (const [name, type] of Object.entries(types)) assert.equal(await input(name).getAttribute("type"), type, name);
    assert.equal(await input("sizes").evaluate((e) => e.multiple), true);
    assert.equal(await input("color").inputValue(), "green");
    assert.equal(await input("settings").evaluate((e) => e.tagName), "TEXTAREA");
    assert.equal(await input("enabled").isChecked(), true);
    assert.equal(await input("count").inputValue(), "3");
    assert.equal(await dialog.getByLabel("Your name").inputValue(), "Kite");
    assert.equal(await dialog.locator('.field[data-input="count"] .req').count(), 1);
    assert.equal(await dialog.locator('.field[data-input="day"] .req').count(), 0);

    const fieldError = (name) => dialog.locator(`.field[data-input="${name}"] .field-error`);
    // "3e" is no number: the browser reads the field as empty, the form says so instead of
    // running with the default; the server's errors for the other fields come with it.
    await input("count").fill("");
    await input("count").pressSequentially("3e");
    await input("wait").fill("soon");
    await dialog.getByRole("button", { name: "Execute", exact: true }).click();
    await fieldError("count").waitFor();
    assert.match(await fieldError("count").textContent(), /Invalid input for `count`: not a number/);
    await fieldError("wait").waitFor();
    assert.match(await fieldError("wait").textContent(), /Invalid input for `wait`/);
    assert.match(page.url(), /\/ui\/flows\/edit\/dev\/inputs/, "no execution was created");

    // Every failing input at once, not one per submit.
    await input("count").fill("0");
    await input("settings").fill("{not json");
    await dialog.getByRole("button", { name: "Execute", exact: true }).click();
    await dialog.locator('.field[data-input="settings"] .field-error:not([hidden])').waitFor();
    assert.match(await fieldError("count").textContent(), /Invalid input for `count`, it must be more than `1`/);
    assert.match(await fieldError("wait").textContent(), /Invalid input for `wait`/);
    assert.equal(await input("count").getAttribute("aria-invalid"), "true");
    assert.equal(await dialog.locator(".field.invalid").count(), 3);
    await shot(page, "execute-validation");

    await input("wait").fill("PT1M");
    await input("settings").fill('{"retries": 2}');

    await input("count").fill("4");
    await input("sizes").selectOption(["M", "L"]);
    await dialog.getByRole("button", { name: "Execute", exact: true }).click();
    await page.waitForURL(/\/ui\/executions\/dev\/inputs\//);
    await expectState(page, "SUCCESS");
    await page.locator(".log .msg", { hasText: "count 4" }).waitFor();
    await page.done();
  });

  test("the editor saves a revision and marks a validation error at its line", async () => {
    const page = await openPage({}, { allowStatus: [422] });
    const source = "id: edited\nnamespace: ui.test\ntasks:\n  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: first\n";
    const created = await fetch(`${kite.base}/api/v1/flows`, { method: "POST", headers: { "Content-Type": "application/x-yaml" }, body: source });
    assert.equal(created.status, 200);
    await page.goto(`${kite.base}/ui/flows/edit/ui.test/edited/source`);
    await page.locator(".code-view .y-key", { hasText: "namespace" }).first().waitFor();
    await page.getByRole("button", { name: "Edit" }).click();
    const editor = page.getByLabel("Flow source");
    await editor.fill(source.replace("message: first", "mesage: typo"));
    await page.getByRole("button", { name: "Save" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.match(await alert.textContent(), /Unrecognized field "mesage"/);
    await page.locator(".editor .gutter span.err", { hasText: "6" }).waitFor();
    await shot(page, "editor-error");
    await alert.getByRole("button", { name: "Line 6" }).click();

    await editor.fill(source.replace("message: first", "message: second"));
    await editor.press("Control+s");
    await page.getByText("Saved revision 2").waitFor();
    await page.locator(".code-view", { hasText: "message: second" }).waitFor();
    await page.getByRole("link", { name: "Revisions" }).click();
    await page.getByRole("link", { name: "Revision 1" }).waitFor();
    await page.done();
  });

  test("a JSON input and a ForEach: one bar per task run, outputs", async () => {
    const page = await openPage();
    await page.goto(`${kite.base}/ui/flows/edit/dev/for-each`);
    await page.getByRole("button", { name: "Execute", exact: true }).click();
    const items = page.getByRole("dialog").locator('[name="items"]');
    assert.equal(await items.evaluate((e) => e.tagName), "TEXTAREA");
    assert.equal(await items.inputValue(), '["a", "b", "c"]');
    await page.getByRole("dialog").getByRole("button", { name: "Execute", exact: true }).click();
    await expectState(page, "SUCCESS");
    for (const item of ["a", "b", "c"]) await page.locator(".log .msg", { hasText: `Item ${item}` }).waitFor();
    assert.equal(await page.locator(".gantt li").count(), 5, "each, three iterations, summary");
    await page.getByText("3 items").waitFor();
    await shot(page, "execution-for-each");
    await page.done();
  });

  test("live: a paused execution is resumed with its onResume inputs; a sleeping one is killed", async () => {
    const flows = [
      "id: approval\nnamespace: ui.test\ntasks:\n  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n" +
        "    onResume:\n      - id: reason\n        type: STRING\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n" +
        "    message: \"Approved: {{ outputs.pause.onResume.reason }}\"\n",
      "id: sleeper\nnamespace: ui.test\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT60S\n",
      "id: failing\nnamespace: ui.test\ntasks:\n  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n    errorMessage: it broke\n",
    ];
    for (const body of flows) {
      const r = await fetch(`${kite.base}/api/v1/flows`, { method: "POST", headers: { "Content-Type": "application/x-yaml" }, body });
      assert.equal(r.status, 200, await r.text());
    }
    const page = await openPage();
    page.on("dialog", (d) => d.accept());
    await page.goto(`${kite.base}/ui/flows/edit/ui.test/approval`);
    await page.getByRole("button", { name: "Execute", exact: true }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Execute", exact: true }).click();
    await expectState(page, "PAUSED");
    await page.getByRole("button", { name: "Resume" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("reason").fill("looks good");
    await dialog.getByRole("button", { name: "Resume" }).click();
    await expectState(page, "SUCCESS");
    await page.locator(".log .msg", { hasText: "Approved: looks good" }).waitFor();

    // dev/sleep-and-pause: RUNNING, PAUSED (Resume offered), then SUCCESS, all without a reload.
    await page.goto(`${kite.base}/ui/flows/edit/dev/sleep-and-pause`);
    await page.getByRole("button", { name: "Execute", exact: true }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Execute", exact: true }).click();
    await expectState(page, "RUNNING");
    await page.locator(".log .msg", { hasText: "Sleeping for 5 seconds" }).waitFor();
    await expectState(page, "PAUSED");
    await page.getByRole("button", { name: "Resume" }).waitFor();
    await expectState(page, "SUCCESS");
    await page.locator(".log .msg", { hasText: "Done at" }).waitFor();
    assert.equal(await page.locator(".gantt li").count(), 4);
    await shot(page, "execution-timeline");

    await page.goto(`${kite.base}/ui/flows/edit/ui.test/sleeper`);
    await page.getByRole("button", { name: "Execute", exact: true }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Execute", exact: true }).click();
    await expectState(page, "RUNNING");
    // The list shows how long a running execution has run so far.
    const sleeping = page.url();
    await page.waitForTimeout(1200);
    await page.goto(`${kite.base}/ui/executions?flowId=sleeper`);
    const running = page.locator("table.executions tbody tr", { has: page.locator(".state-running") });
    assert.match(await running.locator("td:nth-child(6)").textContent(), /^\d+\.\d+ s$/);
    await page.goto(sleeping);
    await page.getByRole("button", { name: "Kill" }).click();
    await expectState(page, "KILLED");
    await page.getByRole("button", { name: "Restart" }).waitFor();
    const background = () => page.locator("#execution-state .state").evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.equal(await background(), "rgba(0, 0, 0, 0)", "KILLED is outlined, not filled like FAILED");

    // A failed execution: its ERROR log, then Restart (a second attempt).
    await page.goto(`${kite.base}/ui/flows/edit/ui.test/failing`);
    await page.getByRole("button", { name: "Execute", exact: true }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Execute", exact: true }).click();
    await expectState(page, "FAILED");
    assert.notEqual(await background(), "rgba(0, 0, 0, 0)", "FAILED is filled");
    await page.locator(".log-error .msg", { hasText: "it broke" }).waitFor();
    await page.getByRole("button", { name: "Restart" }).click();
    await page.locator(".gantt li", { hasText: "2 attempts" }).waitFor();
    await expectState(page, "FAILED");
    assert.equal(await page.locator(".summary dt:text('Attempt') + dd").textContent(), "2");
    await page.done();
  });

  test("a webhook execution shows its trigger; logs filter by level", async () => {
    const r = await fetch(`${kite.base}/api/v1/executions/webhook/dev/hello-world/test1234?wait=true`, {
      method: "POST", headers: { "Content-Type": "text/plain" }, body: "sent to the webhook",
    });
    assert.equal(r.status, 200);
    const execution = await r.json();
    const page = await openPage();
    await page.goto(`${kite.base}/ui/executions/dev/hello-world/${execution.id}`);
    await expectState(page, "SUCCESS");
    const trigger = page.locator("section", { has: page.getByRole("heading", { name: "Trigger" }) });
    await trigger.getByText("io.kestra.plugin.core.trigger.Webhook").waitFor();
    await trigger.getByText("webhook", { exact: true }).waitFor();
    await page.locator(".log .msg", { hasText: "sent to the webhook" }).waitFor();
    await page.getByLabel("Level").selectOption("ERROR");
    await page.getByText("No logs at this level.").waitFor();
    await page.getByLabel("Level").selectOption("TRACE");
    await page.locator(".log .msg", { hasText: "sent to the webhook" }).waitFor();
    await page.done();
  });

  test("executions list: filters and pagination", async () => {
    const page = await openPage({}, { allowStatus: [422] });
    // The flow list now shows the last execution of each flow.
    await page.goto(`${kite.base}/ui/flows`);
    const hello = page.locator("tr", { has: page.getByRole("link", { name: "hello-world", exact: true }) });
    await hello.locator(".last .state-success").waitFor();
    await shot(page, "flows");
    await page.goto(`${kite.base}/ui/executions?size=10`);
    await page.locator("table.executions tbody tr").first().waitFor();
    await shot(page, "executions");
    await page.getByLabel("Flow", { exact: true }).fill("hello-world");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/flowId=hello-world/);
    await page.locator("table.executions tbody tr").first().waitFor();
    const flows = await page.locator("table.executions tbody tr td:nth-child(3)").allTextContents();
    assert.ok(flows.length > 0 && flows.every((f) => f === "hello-world"), flows.join(","));
    await page.getByLabel("State").selectOption("KILLED");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.getByText("No executions match these filters.").waitFor();
    // Date range, in the browser's local time.
    const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    const hourAgo = local(new Date(Date.now() - 3600000));
    await page.goto(`${kite.base}/ui/executions?from=${hourAgo}`);
    await page.locator("table.executions tbody tr").first().waitFor();
    await page.goto(`${kite.base}/ui/executions?to=${hourAgo}`);
    await page.getByText("No executions match these filters.").waitFor();
    await page.goto(`${kite.base}/ui/executions`);
    await page.getByLabel("Started after").fill(hourAgo);
    await page.getByLabel("Started before").fill(local(new Date(Date.now() - 7200000)));
    await page.getByRole("button", { name: "Filter" }).click();
    await page.getByRole("alert").getByText("Start date must be before End Date").waitFor();
    // Pagination: five per page, the next page holds the rest.
    await page.goto(`${kite.base}/ui/executions?size=5`);
    const total = Number((await page.locator(".count").textContent()).split(" of ")[1]);
    assert.ok(total > 5, `total ${total}`);
    assert.equal(await page.locator("table.executions tbody tr").count(), 5);
    const firstPage = await page.locator("table.executions tbody tr td:first-child").allTextContents();
    await page.getByRole("link", { name: "Next" }).click();
    await page.waitForURL(/page=2/);
    await page.getByText(`6–${Math.min(total, 10)} of ${total}`).waitFor();
    const secondPage = await page.locator("table.executions tbody tr td:first-child").allTextContents();
    assert.ok(secondPage.every((id) => !firstPage.includes(id)), "no execution on both pages");
    await page.goto(`${kite.base}/ui/executions?size=5&page=${Math.ceil(total / 5) + 1}`);
    await page.getByText(/past the last page/).waitFor();
    await page.done();
  });

  test("executions list: refreshes itself, text and label filters, bulk replay, kill and delete", async () => {
    const flow = "id: short-nap\nnamespace: ui.bulk\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT2S\n";
    const r = await fetch(`${kite.base}/api/v1/flows`, { method: "POST", headers: { "Content-Type": "application/x-yaml" }, body: flow });
    assert.equal(r.status, 200, await r.text());
    const start = (labels = "") => fetch(`${kite.base}/api/v1/executions/ui.bulk/short-nap${labels}`, { method: "POST" }).then((x) => x.json());
    const napping = await start("?labels=batch:b1");
    const page = await openPage({}, { allowStatus: [400] });
    page.on("dialog", (d) => d.accept());
    await page.goto(`${kite.base}/ui/executions?namespace=ui.bulk`);
    const row = (id) => page.locator("table.executions tbody tr", { has: page.getByRole("link", { name: id, exact: true }) });
    await row(napping.id).locator(".state-running").waitFor();
    // No reload: the list follows the execution to its end.
    await row(napping.id).locator(".state-success").waitFor({ timeout: 15000 });

    const other = await start();
    await page.goto(`${kite.base}/ui/executions?namespace=ui.bulk&label=batch:b1`);
    await row(napping.id).waitFor();
    assert.equal(await page.locator("table.executions tbody tr").count(), 1, "the label filter keeps one execution");
    await page.goto(`${kite.base}/ui/executions?q=short-nap`);
    await row(other.id).waitFor();
    await row(other.id).locator(".state-success").waitFor({ timeout: 15000 });

    // Replay both, then try to kill ended ones: refused, naming each id.
    await page.getByLabel("Select all executions of the page").check();
    await page.getByText("2 selected").waitFor();
    await page.getByRole("group", { name: "Selected executions" }).getByRole("button", { name: "Replay" }).click();
    await page.locator(".toast", { hasText: "Replayed 2 executions" }).waitFor();
    await page.locator(".count", { hasText: "of 4" }).waitFor();
    await page.getByLabel(`Select ${napping.id}`).check();
    await page.getByRole("group", { name: "Selected executions" }).getByRole("button", { name: "Kill" }).click();
    await page.locator(".toast.error", { hasText: `${napping.id} (execution already finished)` }).waitFor();
    // Delete one: it leaves the list.
    await page.getByLabel(`Select ${napping.id}`).check();
    await page.getByRole("group", { name: "Selected executions" }).getByRole("button", { name: "Delete" }).click();
    await page.locator(".toast", { hasText: "Deleted 1 execution" }).waitFor();
    await page.locator(".count", { hasText: "of 3" }).waitFor();
    assert.equal(await row(napping.id).count(), 0);
    await page.done();
  });

  test("a Subflow task's execution id opens the child execution", async () => {
    const r = await fetch(`${kite.base}/api/v1/executions/dev/parent-child?wait=true`, { method: "POST" });
    const parent = await r.json();
    assert.equal(parent.state.current, "SUCCESS", JSON.stringify(parent));
    const childId = parent.taskRunList.find((t) => t.taskId === "child").outputs.executionId;
    const page = await openPage();
    await page.goto(`${kite.base}/ui/executions/dev/parent-child/${parent.id}`);
    await page.getByRole("link", { name: childId, exact: true }).click();
    await page.waitForURL(new RegExp(`/ui/executions/dev/hello-world/${childId}$`));
    await expectState(page, "SUCCESS");
    await page.locator(".log .msg", { hasText: "hello from the parent" }).waitFor();
    await page.done();
  });

  test("readable at a 375 px phone width", async () => {
    const page = await openPage({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
    await page.goto(`${kite.base}/ui/executions?flowId=for-each`);
    // The State column stays on screen.
    const state = await page.locator("table.executions tbody tr .state").first().boundingBox();
    assert.ok(state && state.x >= 0 && state.x + state.width <= 375, `State column at ${JSON.stringify(state)}`);
    await page.locator("table.executions tbody tr a").first().click();
    await page.locator("#execution-state .state").waitFor();
    await page.locator(".log .msg").first().waitFor();
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(await overflow() <= 1, `the execution page is ${await overflow()}px wider than the screen`);
    await shot(page, "execution-phone");
    await page.goto(`${kite.base}/ui/flows`);
    await page.getByRole("link", { name: "hello-world", exact: true }).click();
    await page.getByText(/curl -X POST/).waitFor();
    assert.ok(await overflow() <= 1, `the flow page is ${await overflow()}px wider than the screen`);
    await page.getByRole("button", { name: "Execute", exact: true }).click();
    await page.getByRole("dialog").getByLabel("greeting").waitFor();
    assert.ok(await overflow() <= 1, `the Execute dialog is ${await overflow()}px wider than the screen`);
    await shot(page, "execute-phone");
    await page.done();
  });

  test("with basic auth the browser's credentials cover the UI and its API calls", async () => {
    const secured = await startKite({ KITE_BASIC_AUTH: "admin:s3cret-ui" });
    try {
      // Without credentials the page answers the challenge that makes a browser ask.
      const anonymous = await fetch(`${secured.base}/ui/flows`);
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.headers.get("www-authenticate"), 'Basic realm="Kite"');

      const page = await openPage({ httpCredentials: { username: "admin", password: "s3cret-ui" } });
      await page.goto(`${secured.base}/`);
      await page.getByRole("link", { name: "hello-world", exact: true }).click();
      await page.getByRole("button", { name: "Execute", exact: true }).click();
      await page.getByRole("dialog").getByLabel("greeting").fill("behind basic auth");
      await page.getByRole("dialog").getByRole("button", { name: "Execute", exact: true }).click();
      await expectState(page, "SUCCESS");
      await page.locator(".log .msg", { hasText: "behind basic auth" }).waitFor();
      await page.done();
    } finally {
      secured.stop();
    }
  });

  test("with a bearer token only the UI asks for the token", async () => {
    const secured = await startKite({ KITE_API_TOKEN: "ui-token-123" });
    try {
      const page = await openPage({}, { allowStatus: [401] });
      await page.goto(`${secured.base}/ui/flows`);
      const field = page.locator("#token-field");
      await field.fill("ui-token-123");
      await page.getByRole("button", { name: "Use token" }).click();
      await page.getByRole("link", { name: "hello-world", exact: true }).click();
      await page.getByRole("button", { name: "Execute", exact: true }).click();
      await page.getByRole("dialog").getByRole("button", { name: "Execute", exact: true }).click();
      await expectState(page, "SUCCESS");
      await page.locator(".log .msg", { hasText: "hello" }).waitFor();
      await page.done();
    } finally {
      secured.stop();
    }
  });
});
