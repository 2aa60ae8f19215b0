// Dashboard budgets bench (scripts/bench-web.sh): bundle size, first live data after
// navigation, and frame times with 1,000 deployments while their checks flip at a fixed
// rate. Each browser figure runs its peer in the same run and prints the ratio:
//
// - first live data: the dashboard (JS bundle + grpc-web Watch snapshot + render) against
//   a static HTML copy of the same rendered page (same DOM, same CSS, no JS), served by
//   the same pharosd;
// - frame times: the dashboard fed by its Watch stream against that static copy with a
//   plain script flipping the same number of tiles per second (no stream, no framework).
//
// Load: 1,000 deployments with one heartbeat check each (interval 1 s, grace 1 s). The
// driver sends heartbeats over grpc-web (HealthService.Heartbeat, operator token) in
// rotation; each heartbeat flips its check healthy and, a grace period later, unhealthy
// again: `--rate` check flips per second (plus the same number of deployment-health
// changes on the journal).
//
// Options: --deployments 1000 --rate 100 --seconds 10 --loads 7

import { createHash } from "node:crypto";
import { cpSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { execFileSync } from "node:child_process";
import {
  BIN_DIR,
  Pharosd,
  WEB_ROOT,
  cleanup,
  launchChromium,
  streamState,
  tempDir,
  waitFor,
  writeAtomic,
} from "./harness.mjs";

const FIRST_LIVE_MARK = "pharos:first-live-data"; // src/ui/hooks.ts
const PEER_MARK = "peer:first-data";

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const DEPLOYMENTS = option("deployments", 1000);
const RATE = option("rate", 100);
const SECONDS = option("seconds", 10);
const LOADS = option("loads", 7);
const ENVIRONMENTS = ["dev", "staging", "prod", "edge"];
const TOKEN = "bench-operator-token";

const results = {};

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), max: sorted[sorted.length - 1] };
}

const f1 = (v) => (Number.isFinite(v) ? v.toFixed(1) : "—");
const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(2)}x` : "—");

// 1. Bundle size ------------------------------------------------------------------------
function bundleSize() {
  const assets = path.join(WEB_ROOT, "assets");
  const html = readFileSync(path.join(WEB_ROOT, "index.html"), "utf8");
  let total = 0;
  let initial = 0;
  const files = [];
  for (const name of readdirSync(assets).filter((f) => f.endsWith(".js")).sort()) {
    const gz = gzipSync(readFileSync(path.join(assets, name)), { level: 9 }).length;
    const eager = html.includes(`assets/${name}`);
    total += gz;
    if (eager) initial += gz;
    files.push({ name, gzipBytes: gz, loadedBy: eager ? "index.html" : "on demand" });
  }
  results.bundle = { totalGzipBytes: total, initialGzipBytes: initial, files, budgetBytes: 150 * 1024 };
  console.log("\n== JavaScript, gzipped (level 9)");
  for (const f of files) console.log(`  ${f.name.padEnd(32)} ${(f.gzipBytes / 1024).toFixed(1).padStart(7)} KiB  (${f.loadedBy})`);
  console.log(`  total ${(total / 1024).toFixed(1)} KiB, loaded by the first page ${(initial / 1024).toFixed(1)} KiB; budget 150 KiB: ${total < 150 * 1024 ? "met" : "MISSED"}`);
}

// The load ---------------------------------------------------------------------------------
function catalog(count) {
  const lines = ["environments:"];
  for (const env of ENVIRONMENTS) lines.push(`  - id: ${env}`, `    name: ${env}`);
  lines.push("projects:");
  const perEnv = ENVIRONMENTS.length;
  const projects = Math.ceil(count / perEnv);
  const checkIds = [];
  for (let p = 0; p < projects; p++) {
    const id = `svc-${String(p).padStart(4, "0")}`;
    lines.push(`  - id: ${id}`, `    name: Service ${p}`, "    type: service", "    deployments:");
    for (let e = 0; e < perEnv && checkIds.length < count; e++) {
      lines.push(
        `      - environment: ${ENVIRONMENTS[e]}`,
        "        checks:",
        "          - name: alive",
        "            heartbeat:",
        "              grace: 1s",
        "            interval: 1s",
        "            timeout: 1s",
        "            unhealthy_after: 1",
      );
      checkIds.push(`${id}/${ENVIRONMENTS[e]}/alive`);
    }
  }
  return { yaml: `${lines.join("\n")}\n`, checkIds };
}

function grpcWebFrame(message) {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

function protoString(field, value) {
  const bytes = Buffer.from(value);
  const len = [];
  let n = bytes.length;
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), bytes]);
}

/** HealthService.Heartbeat over grpc-web; throws unless grpc-status is 0. */
async function heartbeat(server, checkId) {
  const res = await fetch(`${server}/pharos.v1.HealthService/Heartbeat`, {
    method: "POST",
    headers: {
      "content-type": "application/grpc-web+proto",
      "x-grpc-web": "1",
      authorization: `Bearer ${TOKEN}`,
    },
    body: grpcWebFrame(protoString(1, checkId)),
  });
  const body = Buffer.from(await res.arrayBuffer());
  let status = res.headers.get("grpc-status");
  let message = res.headers.get("grpc-message") ?? "";
  for (let i = 0; i + 5 <= body.length; ) {
    const flags = body[i];
    const len = body.readUInt32BE(i + 1);
    if (flags & 0x80) {
      const trailers = body.subarray(i + 5, i + 5 + len).toString();
      status = /grpc-status:\s*(\d+)/.exec(trailers)?.[1] ?? status;
      message = /grpc-message:\s*(.*)/.exec(trailers)?.[1]?.trim() ?? message;
    }
    i += 5 + len;
  }
  if (res.status !== 200 || status !== "0") throw new Error(`Heartbeat ${checkId}: HTTP ${res.status}, grpc-status ${status} ${message}`);
}

/** Sends `rate / 2` heartbeats per second in rotation until stopped (each makes 2 flips). */
function startDriver(server, checkIds) {
  const perSecond = RATE / 2;
  const started = performance.now();
  let sent = 0;
  let failed = null;
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const due = Math.floor(((performance.now() - started) / 1000) * perSecond);
      const batch = [];
      while (sent < due) batch.push(heartbeat(server, checkIds[sent++ % checkIds.length]));
      await Promise.all(batch).catch((err) => (failed ??= err));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    get sent() {
      return sent;
    },
    async stop() {
      stopped = true;
      await done;
      if (failed) throw failed;
      return { sent, seconds: (performance.now() - started) / 1000 };
    },
  };
}

function serverHead(server) {
  const out = execFileSync(path.join(BIN_DIR, "pharos"), ["--server", server, "--token", TOKEN, "status", "-o", "json"]);
  return Number(JSON.parse(out.toString()).revision);
}

// In the page: requestAnimationFrame deltas and long tasks over a window.
const RECORDER = `(() => {
  const r = { deltas: [], longTasks: [], last: 0, running: true };
  new PerformanceObserver((list) => { for (const e of list.getEntries()) r.longTasks.push(e.duration); })
    .observe({ type: "longtask", buffered: false });
  const tick = (t) => { if (r.last) r.deltas.push(t - r.last); r.last = t; if (r.running) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  window.__frames = r;
})()`;

function frameStats(deltas, frameMs) {
  const s = summary(deltas);
  const dropped = deltas.reduce((n, d) => n + Math.max(0, Math.round(d / frameMs) - 1), 0);
  return { ...s, dropped, frames: deltas.length };
}

async function recordFrames(page, seconds) {
  await page.evaluate(RECORDER);
  const trace = process.env.PHAROS_BENCH_TRACE ? await startTrace(page) : null;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  if (trace) await trace();
  return page.evaluate(() => {
    window.__frames.running = false;
    return { deltas: window.__frames.deltas, longTasks: window.__frames.longTasks };
  });
}

/**
 * With PHAROS_BENCH_TRACE set: records Chromium's trace while frames are recorded and
 * prints where the renderer's main thread spent its time (top-level events by name).
 */
async function startTrace(page) {
  const cdp = await page.context().newCDPSession(page);
  const events = [];
  cdp.on("Tracing.dataCollected", (data) => events.push(...data.value));
  const done = new Promise((resolve) => cdp.once("Tracing.tracingComplete", resolve));
  await cdp.send("Tracing.start", {
    categories: "devtools.timeline,v8,disabled-by-default-devtools.timeline",
    transferMode: "ReportEvents",
  });
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
  await cdp.send("Profiler.start");
  return async () => {
    const { profile } = await cdp.send("Profiler.stop");
    await cdp.send("Tracing.end");
    await done;
    // Self time per function from the sampling profile.
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    const deltas = profile.timeDeltas;
    profile.samples.forEach((id, i) => {
      const node = byId.get(id);
      const f = node.callFrame;
      const name = `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber}`;
      self.set(name, (self.get(name) ?? 0) + (deltas[i + 1] ?? 0) / 1000);
    });
    console.log("  JS self time, ms (sampling profile):");
    for (const [name, ms] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
      console.log(`    ${name.slice(0, 70).padEnd(70)} ${ms.toFixed(1)}`);
    }
    const main = events.find((e) => e.name === "thread_name" && e.args?.name === "CrRendererMain");
    const totals = new Map();
    for (const e of events) {
      if (!main || e.pid !== main.pid || e.tid !== main.tid || e.ph !== "X" || !e.dur) continue;
      totals.set(e.name, (totals.get(e.name) ?? 0) + e.dur / 1000);
    }
    const top = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15);
    console.log("  renderer main thread, ms by event (nested events counted in their parents too):");
    for (const [name, ms] of top) console.log(`    ${name.padEnd(36)} ${ms.toFixed(1)}`);
  };
}

/**
 * A pharosd with `count` heartbeat deployments, its web root a copy of dist/ plus the two
 * peers written from the rendered system page.
 */
async function setUp(browser, count) {
  const dir = tempDir("pharos-bench-web-");
  const web = path.join(dir, "web");
  cpSync(WEB_ROOT, web, { recursive: true });
  const { yaml, checkIds } = catalog(count);
  const catalogPath = path.join(dir, "catalog.yaml");
  writeAtomic(catalogPath, yaml);
  const configPath = path.join(dir, "pharos.yaml");
  const sha = createHash("sha256").update(TOKEN).digest("hex");
  writeAtomic(
    configPath,
    [
      "tokens:",
      "  - name: bench",
      "    role: operator",
      `    sha256: ${sha}`,
      "health:",
      "  concurrency: 1024",
      "  flap_changes: 1000000",
      "",
    ].join("\n"),
  );
  const pharosd = await Pharosd.start(dir, { catalog: catalogPath, webRoot: web, extraArgs: ["--config", configPath] });
  const server = pharosd.url;
  console.log(`\npharosd ${BIN_DIR}/pharosd on ${server}: ${count} deployments, one heartbeat check each`);
  // Every check has had its grace period and is unhealthy: the start-up burst is over.
  await new Promise((r) => setTimeout(r, 2500));

  // The static peer: the rendered system page, scripts removed, as a plain HTML file.
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(`${server}/#/`);
  await waitFor(async () => (await streamState(page))?.ready, { timeoutMs: 30_000, what: "the system page" });
  await page.locator("li[data-deployment]").nth(count - 1).waitFor({ timeout: 30_000 });
  let html = await page.evaluate(() => document.documentElement.outerHTML);
  html = html.replace(/<script\b[^>]*>[\s\S]*?<\/script>/g, "").replace(/<link[^>]*rel="modulepreload"[^>]*>/g, "");
  // Marked like the dashboard's first live data (src/ui/hooks.ts useFirstLiveMark): at the
  // start of the frame after the one that painted the content.
  const mark = `<script>requestAnimationFrame(() => requestAnimationFrame(() => performance.mark(${JSON.stringify(PEER_MARK)})));</script>`;
  writeFileSync(path.join(web, "peer-static.html"), `<!doctype html>\n${html.replace("</body>", `${mark}</body>`)}`);
  // The churn peer: the same document, with a plain script flipping tiles at RATE/s.
  const churn = `<script>(() => {
    const tiles = [...document.querySelectorAll("li[data-deployment]")];
    let i = 0; const start = performance.now(); let done = 0;
    setInterval(() => {
      const due = Math.floor((performance.now() - start) / 1000 * ${RATE});
      for (; done < due; done++) {
        const li = tiles[i++ % tiles.length];
        const bad = li.dataset.status !== "bad";
        li.dataset.status = bad ? "bad" : "ok";
        li.className = "card tone-border-" + (bad ? "bad" : "ok");
        const badge = li.querySelector(".card-head .badge");
        if (badge) { badge.className = "badge tone-" + (bad ? "bad" : "ok"); badge.lastChild.textContent = bad ? "Unhealthy" : "Healthy"; }
      }
    }, 10);
  })();</script>`;
  writeFileSync(path.join(web, "peer-churn.html"), `<!doctype html>\n${html.replace("</body>", `${churn}</body>`)}`);
  await context.close();
  return { server, checkIds, staticBytes: Buffer.byteLength(html) };
}

async function newContext(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((token) => sessionStorage.setItem("pharos.token", token), TOKEN);
  return context;
}

/** Navigation start to `mark`, over LOADS loads, each in a fresh context (cold cache). */
async function measureLoad(browser, url, mark) {
  const times = [];
  for (let i = 0; i < LOADS; i++) {
    const context = await newContext(browser);
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction((m) => performance.getEntriesByName(m).length > 0, mark, { timeout: 30_000 });
    times.push(await page.evaluate((m) => performance.getEntriesByName(m)[0].startTime, mark));
    await context.close();
  }
  return summary(times);
}

async function loadBench(browser, setup, count) {
  const { server } = setup;
  console.log(`\n== First data on screen after navigation, ${count} deployments (${LOADS} loads each, fresh browser context, loopback)`);
  const rows = [];
  for (const p of [
    { name: "system (#/)", url: `${server}/#/` },
    { name: "projects (#/projects)", url: `${server}/#/projects` },
  ]) {
    const m = await measureLoad(browser, p.url, FIRST_LIVE_MARK);
    rows.push({ page: p.name, ...m });
    console.log(`  pharos ${p.name.padEnd(24)} p50 ${f1(m.p50).padStart(7)} ms  max ${f1(m.max).padStart(7)} ms  (budget 500 ms: ${m.max < 500 ? "met" : "MISSED"})`);
  }
  const peer = await measureLoad(browser, `${server}/peer-static.html`, PEER_MARK);
  console.log(`  peer: static HTML of the same system page (${(setup.staticBytes / 1024).toFixed(0)} KiB, no JS)  p50 ${f1(peer.p50)} ms  max ${f1(peer.max)} ms`);
  console.log(`  ratio system page / peer (p50): ${ratio(rows[0].p50, peer.p50)}`);
  return { deployments: count, pages: rows, peer, peerBytes: setup.staticBytes };
}

async function main() {
  bundleSize();
  const browser = await launchChromium();

  // 2. First live data after navigation: a small catalog and the large one.
  const small = await setUp(browser, 12);
  results.firstLiveData = [await loadBench(browser, small, 12)];
  const big = await setUp(browser, DEPLOYMENTS);
  results.firstLiveData.push(await loadBench(browser, big, DEPLOYMENTS));
  const server = big.server;
  const checkIds = big.checkIds;

  // 3. Frame times under load --------------------------------------------------------------
  console.log(`\n== Frame times: ${DEPLOYMENTS} deployments, ${RATE} check flips/s for ${SECONDS} s (requestAnimationFrame deltas)`);
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(`${server}/#/`);
  await waitFor(async () => (await streamState(page))?.state === "live", { timeoutMs: 30_000, what: "a live system page" });
  await page.locator("li[data-deployment]").nth(DEPLOYMENTS - 1).waitFor({ timeout: 30_000 });
  // The display's frame interval, measured on a blank page of the same browser.
  const blank = await context.newPage();
  await blank.setContent("<!doctype html><title>blank</title>");
  const frameMs = summary((await recordFrames(blank, 2)).deltas).p50;
  await blank.close();
  await page.bringToFront();

  await heartbeat(server, checkIds[0]); // fails loudly if the token or RPC is wrong
  const driver = startDriver(server, checkIds);
  await new Promise((r) => setTimeout(r, 3000)); // warm-up: flips reach steady state
  const headStart = serverHead(server);
  const pageStart = await streamState(page);
  const t0 = performance.now();
  const busy = await recordFrames(page, SECONDS);
  const windowSeconds = (performance.now() - t0) / 1000;
  const headEnd = serverHead(server);
  const pageEnd = await streamState(page);
  const sent = await driver.stop();
  // Catch-up: the time until the page applied everything the server had journaled.
  const stoppedAt = performance.now();
  const head = serverHead(server);
  await waitFor(async () => (await streamState(page)).lastRevision >= head, { timeoutMs: 30_000, what: "the page to catch up" });
  const catchUp = performance.now() - stoppedAt;

  const stats = frameStats(busy.deltas, frameMs);
  const serverRate = (headEnd - headStart) / windowSeconds;
  const pageRate = (pageEnd.appliedTotal - pageStart.appliedTotal) / windowSeconds;
  results.frames = {
    frameMs,
    ...stats,
    longTasks: summary(busy.longTasks),
    heartbeatsPerSecond: sent.sent / sent.seconds,
    journalChangesPerSecond: serverRate,
    pageChangesPerSecond: pageRate,
    catchUpMs: catchUp,
  };
  await context.close();

  // Peer: the static copy with a plain script flipping RATE tiles per second.
  const peerContext = await newContext(browser);
  const peerPage = await peerContext.newPage();
  await peerPage.goto(`${server}/peer-churn.html`);
  await peerPage.waitForLoadState("load");
  await new Promise((r) => setTimeout(r, 1000));
  const peerBusy = await recordFrames(peerPage, SECONDS);
  const peerStats = frameStats(peerBusy.deltas, frameMs);
  results.framesPeer = { ...peerStats, longTasks: summary(peerBusy.longTasks) };
  await peerContext.close();

  const row = (name, s, lt) =>
    `  ${name.padEnd(44)} p50 ${f1(s.p50).padStart(6)} ms  p95 ${f1(s.p95).padStart(6)} ms  max ${f1(s.max).padStart(6)} ms  dropped ${String(s.dropped).padStart(4)} of ${s.frames + s.dropped}  long tasks ${lt.n}`;
  console.log(`  display frame interval (blank page p50): ${f1(frameMs)} ms`);
  console.log(row("pharos system page (Watch stream)", stats, results.frames.longTasks));
  console.log(row(`peer: static copy, plain script, ${RATE} flips/s`, peerStats, results.framesPeer.longTasks));
  console.log(`  ratio pharos / peer: p95 ${ratio(stats.p95, peerStats.p95)}, max ${ratio(stats.max, peerStats.max)}`);
  console.log(
    `  load: ${f1(results.frames.heartbeatsPerSecond)} heartbeats/s -> ${f1(serverRate)} journal changes/s (checks and deployments); ` +
      `page applied ${f1(pageRate)} changes/s; caught up ${f1(catchUp)} ms after the driver stopped`,
  );

  const out = path.join(path.resolve(BIN_DIR, "../.."), "bench-results");
  try {
    execFileSync("mkdir", ["-p", out]);
    writeFileSync(path.join(out, "web.json"), `${JSON.stringify(results, null, 2)}\n`);
    console.log(`\nresults: ${path.join(out, "web.json")}`);
  } catch (err) {
    console.error(`could not write results: ${err.message}`);
  }
}

try {
  await main();
} finally {
  await cleanup();
}
