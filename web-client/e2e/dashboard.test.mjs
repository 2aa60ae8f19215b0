// End-to-end: the built dashboard (web-client/dist) served by a real pharosd, in Debian's
// Chromium, against real HTTP targets. Run with `npm run e2e` after `cargo build --bins`
// and `npm run build` (scripts/test.sh does both).

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  Pharosd,
  catalogYaml,
  cleanup,
  freePort,
  journalRevisions,
  launchChromium,
  screenshot,
  screenshots,
  startHttpTarget,
  streamState,
  tempDir,
  waitFor,
  writeAtomic,
} from "./harness.mjs";

/** The topics the system page watches (src/ui/App.tsx), as `pharos watch` names them. */
const SYSTEM_TOPICS = ["catalog", "events", "health"];

let browser;

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await cleanup();
  if (screenshots.length) console.log(`screenshots:\n${screenshots.map((f) => `  ${f}`).join("\n")}`);
});

/** A fresh pharosd watching `targets`, and a page that has not reloaded since `open`. */
async function setUp(name, targetCount) {
  const dir = tempDir(`pharos-e2e-${name}-`);
  const targets = [];
  for (let i = 0; i < targetCount; i++) targets.push(await startHttpTarget(await freePort()));
  const catalogPath = path.join(dir, "catalog.yaml");
  const entries = targets.map((t, i) => ({
    project: i === 0 ? "web" : `web-${i}`,
    name: i === 0 ? "Web target" : `Web target ${i}`,
    url: t.url,
    port: 20000 + i,
  }));
  writeAtomic(catalogPath, catalogYaml(entries));
  const pharosd = await Pharosd.start(dir, { catalog: catalogPath, extraArgs: ["--progress-interval", "1s"] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  return { dir, targets, entries, catalogPath, pharosd, page };
}

async function open(page, url) {
  await page.goto(url);
  // Set once per document: still there later means the page never reloaded.
  await page.evaluate(() => {
    window.__pharosE2eDocument = true;
  });
}

async function notReloaded(page) {
  return page.evaluate(() => window.__pharosE2eDocument === true);
}

async function waitLive(page, timeoutMs = 15_000) {
  await waitFor(async () => (await streamState(page))?.state === "live", { timeoutMs, what: "the stream to be live" });
}

describe("dashboard against a real pharosd", () => {
  test("a stopped target turns its tile unhealthy within 2 s, without a reload", async () => {
    const { targets, pharosd, page } = await setUp("stop-target", 2);
    await open(page, `${pharosd.url}/#/`);
    const tile = (status) => `li[data-deployment="web/e2e"][data-status="${status}"]`;
    await page.locator(tile("ok")).waitFor({ timeout: 15_000 });
    await page.locator('li[data-deployment="web-1/e2e"][data-status="ok"]').waitFor({ timeout: 15_000 });
    await waitLive(page);
    await screenshot(page, "system");

    await targets[0].stop();
    const stoppedAt = performance.now();
    await page.locator(tile("bad")).waitFor({ timeout: 10_000 });
    const elapsed = performance.now() - stoppedAt;
    console.log(`tile unhealthy ${elapsed.toFixed(0)} ms after the target stopped`);
    assert.ok(elapsed < 2000, `the tile turned unhealthy ${elapsed.toFixed(0)} ms after the stop (bound 2000 ms)`);
    assert.match(await page.locator(tile("bad")).innerText(), /Unhealthy/);
    // The other target is still healthy, and the page never reloaded.
    assert.equal(await page.locator('li[data-deployment="web-1/e2e"]').getAttribute("data-status"), "ok");
    assert.ok(await notReloaded(page), "the page reloaded");
    await screenshot(page, "system-target-stopped");

    // The other pages, for the record (each opens its own stream).
    await page.goto(`${pharosd.url}/#/projects`);
    await page.locator('tr[data-project="web"]').waitFor({ timeout: 10_000 });
    await waitLive(page);
    await screenshot(page, "projects");
    await page.goto(`${pharosd.url}/#/projects/web`);
    await page.locator("#latency").waitFor({ timeout: 10_000 });
    await page.locator(".chart canvas").waitFor({ timeout: 10_000 });
    await waitLive(page);
    await screenshot(page, "project");
  });

  test("killing and restarting pharosd: reconnecting, stale, unreachable, then resumes with no lost change", async () => {
    const { entries, catalogPath, pharosd, page } = await setUp("restart", 1);
    await open(page, `${pharosd.url}/#/`);
    await page.locator('li[data-deployment="web/e2e"][data-status="ok"]').waitFor({ timeout: 15_000 });
    await waitLive(page);
    const before = await streamState(page);
    assert.equal(before.resyncs, 0);

    await pharosd.kill("SIGKILL");
    // The stream's end is noticed at once: "Reconnecting" in the header, data marked stale.
    await page.locator(".conn", { hasText: "Reconnecting" }).waitFor({ timeout: 5_000 });
    await page.locator(".panel.stale .stale-tag").first().waitFor({ timeout: 2_000 });
    await screenshot(page, "system-reconnecting");

    // After several failed attempts the page says the server is unreachable, and the
    // last update's age keeps growing.
    await page.locator(".conn", { hasText: "Server unreachable" }).waitFor({ timeout: 15_000 });
    await page.locator(".notice", { hasText: /unreachable|cannot reach|not reachable/i }).waitFor({ timeout: 2_000 });
    const age = async () => {
      const text = await page.locator(".last-update.is-stale").innerText();
      const m = /Last update (\d+) s ago/.exec(text);
      assert.ok(m, `last update text: ${text}`);
      assert.match(text, /stale/i);
      return Number(m[1]);
    };
    const firstAge = await age();
    await waitFor(async () => (await age()) >= firstAge + 1, { timeoutMs: 3_000, what: "the last update's age to grow" });
    // No panel claims to be live.
    assert.equal(await page.locator(".panel:not(.stale)").count(), 0, "a panel is not marked stale");
    await screenshot(page, "system-unreachable");

    // A catalog edit while pharosd is down: a new project.
    const added = { project: "late", name: "Added while down", url: entries[0].url, port: 20050, interval: "1s", timeout: "500ms" };
    writeAtomic(catalogPath, catalogYaml([...entries, added]));
    await pharosd.start();

    await page.locator('li[data-deployment="late/e2e"]').waitFor({ timeout: 20_000 });
    await waitLive(page);
    await page.locator(".conn", { hasText: "Live" }).waitFor({ timeout: 2_000 });
    assert.ok(await notReloaded(page), "the page reloaded");

    // Resumed, not rebuilt: same snapshot, no resync, every revision once and in order,
    // exactly the ones the server's journal has for these topics.
    const afterState = await streamState(page);
    assert.equal(afterState.resyncs, 0, "the stream resynced instead of resuming");
    assert.equal(afterState.snapshotRevision, before.snapshotRevision, "a new snapshot was taken");
    assert.equal(afterState.appliedTotal, afterState.applied.length, "the revision log was truncated");
    for (let i = 1; i < afterState.applied.length; i++) {
      assert.ok(afterState.applied[i] > afterState.applied[i - 1], `revision ${afterState.applied[i]} repeated or out of order`);
    }
    const last = afterState.applied[afterState.applied.length - 1];
    assert.ok(last > before.lastRevision, "nothing was applied after the restart");
    const journal = await journalRevisions(pharosd.url, afterState.snapshotRevision, last, SYSTEM_TOPICS);
    assert.deepEqual(afterState.applied, journal, "the page's revisions differ from the journal's");
    console.log(
      `resumed: ${afterState.applied.length} changes after snapshot ${afterState.snapshotRevision}, ` +
        `${afterState.duplicatesDropped} duplicates dropped, journal agrees up to ${last}`,
    );
    await screenshot(page, "system-resumed");
  });
  test("the system page charts pharosd's own throughput and latency and shows capacity gauges, refreshed by the stream", async () => {
    const dir = tempDir("pharos-e2e-system-");
    const target = await startHttpTarget(await freePort());
    const catalogPath = path.join(dir, "catalog.yaml");
    // An alert rule that holds as soon as the host's memory is sampled, and a KPI whose
    // database is not there: the KPI panel shows the one firing and the other's error.
    const closedPort = await freePort();
    writeAtomic(
      catalogPath,
      catalogYaml([{ project: "web", name: "Web target", url: target.url, port: 20000 }]) +
        "alert_rules:\n  - name: memory-sampled\n    metric: pharos_host_memory_total_bytes\n    threshold: 0\n    severity: info\n" +
        `kpis:\n  - name: tenants\n    dsn: postgres://nobody@127.0.0.1:${closedPort}/none\n    interval: 1s\n    query: SELECT 1 AS one\n`,
    );
    const configPath = path.join(dir, "pharosd.yaml");
    writeAtomic(configPath, "telemetry:\n  interval: 250ms\ncapacity:\n  interval: 300ms\n");
    const pharosd = await Pharosd.start(dir, { catalog: catalogPath, extraArgs: ["--config", configPath] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const calls = [];
    page.on("request", (r) => {
      const name = r.url().split("/").pop();
      if (name === "GetCapacity" || name === "GetSystemMetrics") calls.push(name);
    });
    await open(page, `${pharosd.url}/#/`);
    await waitLive(page);
    // Throughput: the page's own calls are pharosd traffic; the figures come once two
    // records of pharosd's figures exist, pushed in by the metrics topic.
    const figures = page.locator('[data-testid="throughput-figures"]');
    await figures.waitFor({ timeout: 15_000 });
    await waitFor(async () => /Calls\/s\s*[1-9]|Calls\/s\s*0\.[1-9]/.test(await figures.innerText()), {
      timeoutMs: 15_000,
      what: "a positive call rate",
    });
    assert.match(await figures.innerText(), /p95\s*[\d.]+ (ms|s)/);
    await page.locator('[role="img"][aria-label="Calls per second, all methods"] canvas').waitFor({ timeout: 10_000 });
    // Capacity: CPU, memory and the data directory's disk as meters with their figures.
    const capacity = page.locator('[data-testid="capacity"]');
    await capacity.waitFor({ timeout: 10_000 });
    assert.ok((await capacity.locator("meter").count()) >= 3, await capacity.innerText());
    assert.match(await capacity.innerText(), /Memory[\s\S]*of [\d.]+ GiB/);
    assert.match(await capacity.innerText(), /pharosd's database \(sqlite\): [\d.]+ (KiB|MiB)/);
    // Refetched as the stream brings new points: more than once, with no reload.
    const before = calls.length;
    await waitFor(async () => calls.length >= before + 2, { timeoutMs: 10_000, what: "refetches driven by the stream" });
    assert.ok(await notReloaded(page));
    // KPIs and alerts (GetAggregates), refetched with the capacity sample.
    const firing = page.locator('[data-testid="alerts-firing"]');
    await waitFor(async () => (await firing.innerText()).includes("1 alert is firing"), {
      timeoutMs: 10_000,
      what: "the firing alert counted",
    });
    const kpis = page.locator('[data-testid="kpis"]');
    await waitFor(async () => /tenants[\s\S]*connect/.test(await kpis.innerText()), {
      timeoutMs: 10_000,
      what: "the failing KPI's error",
    });
    await screenshot(page, "system-panels");
    await page.close();
    await pharosd.stop();
    await target.stop();
  });
});
