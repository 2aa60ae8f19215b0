// Support for the dashboard's end-to-end tests and budgets bench: a real pharosd from
// target/debug on a free loopback port with its own catalog file and SQLite database in a
// temporary directory, real HTTP targets (node processes the tests stop), the `pharos`
// CLI as an independent reader of the journal, and Debian's Chromium driven by
// playwright-core. Everything started here is stopped by `cleanup()`.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN_DIR = process.env.PHAROS_BIN_DIR ?? path.join(ROOT, "target/debug");
export const WEB_ROOT = path.join(ROOT, "web-client/dist");
export const SCREENSHOT_DIR = process.env.PHAROS_E2E_SCREENSHOTS ?? path.join(ROOT, "target/e2e-screenshots");
export const CHROMIUM = process.env.PHAROS_CHROMIUM ?? "/usr/bin/chromium";

/** Launch flags that work as root on a headless machine (see ENVIRONMENT.md). */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const cleanups = [];

/** Registers `fn` to run (last registered first) in cleanup(). */
export function onCleanup(fn) {
  cleanups.push(fn);
}

export async function cleanup() {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try {
      await fn();
    } catch (err) {
      console.error("cleanup:", err);
    }
  }
}

export function tempDir(prefix = "pharos-e2e-") {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A port nobody listens on right now (bound to 127.0.0.1:0, then released). */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** Polls `fn` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor(fn, { timeoutMs = 10_000, intervalMs = 20, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function alive(child) {
  return child.exitCode === null && child.signalCode === null;
}

async function stopProcess(child, signal = "SIGTERM", graceMs = 5000) {
  if (!alive(child)) return;
  const exited = once(child, "exit");
  child.kill(signal);
  const timer = setTimeout(() => alive(child) && child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * A real HTTP server in its own node process, answering 200 "ok" on 127.0.0.1:port.
 * `stop()` kills the process (SIGKILL) and resolves once it exited.
 */
export async function startHttpTarget(port) {
  const script = `require("node:http").createServer((q, s) => s.end("ok")).listen(${port}, "127.0.0.1", () => console.log("ready"))`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  onCleanup(() => stopProcess(child, "SIGKILL"));
  const ready = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", () => reject(new Error(`the HTTP target on ${port} exited`)));
    setTimeout(() => reject(new Error(`the HTTP target on ${port} did not start in 10 s`)), 10_000).unref();
  });
  await ready;
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    async stop() {
      await stopProcess(child, "SIGKILL");
    },
  };
}

/** Writes a file atomically (temp file, rename), as an editor that saves safely would. */
export function writeAtomic(file, text) {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** pharosd from target/debug, serving web-client/dist, on a free loopback port. */
export class Pharosd {
  constructor(dir, { catalog, port, webRoot = WEB_ROOT, extraArgs = [] }) {
    this.dir = dir;
    this.webRoot = webRoot;
    this.catalog = catalog;
    this.port = port;
    this.extraArgs = extraArgs;
    this.dataDir = path.join(dir, "data");
    this.logPath = path.join(dir, "pharosd.log");
    this.child = null;
    mkdirSync(this.dataDir, { recursive: true });
    onCleanup(() => this.stop());
  }

  static async start(dir, options) {
    const port = options.port ?? (await freePort());
    const daemon = new Pharosd(dir, { ...options, port });
    await daemon.start();
    return daemon;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const log = openSync(this.logPath, "a");
    this.child = spawn(
      path.join(BIN_DIR, "pharosd"),
      [
        "--listen", `127.0.0.1:${this.port}`,
        "--data-dir", this.dataDir,
        "--catalog", this.catalog,
        "--web-root", this.webRoot,
        ...this.extraArgs,
      ],
      { stdio: ["ignore", log, log], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" } },
    );
    const child = this.child;
    await waitFor(async () => {
      if (!alive(child)) throw new Error(`pharosd exited; log:\n${this.log()}`);
      const res = await fetch(`${this.url}/healthz`);
      return res.ok;
    }, { timeoutMs: 30_000, what: `pharosd on ${this.url}` });
  }

  /** Ends pharosd with `signal` (SIGKILL: no shutdown at all) and waits for the exit. */
  async kill(signal = "SIGKILL") {
    if (this.child) await stopProcess(this.child, signal);
  }

  async stop() {
    if (this.child) await stopProcess(this.child, "SIGTERM");
  }

  log() {
    try {
      return readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }
}

/**
 * `pharos watch --since <revision> -o json <topics>`: the revisions the server delivers
 * after `since`, read until one at or past `until` arrived.
 */
export async function journalRevisions(server, since, until, topics, timeoutMs = 15_000) {
  const child = spawn(
    path.join(BIN_DIR, "pharos"),
    ["watch", "--server", server, "--since", String(since), "-o", "json", ...topics],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  onCleanup(() => stopProcess(child, "SIGKILL"));
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const revisions = [];
  const lines = createInterface({ input: child.stdout });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    for await (const line of lines) {
      let value;
      try {
        value = JSON.parse(line);
      } catch {
        continue;
      }
      if (typeof value.revision !== "number") continue;
      if (value.revision <= until) revisions.push(value.revision);
      if (value.revision >= until) break;
    }
  } finally {
    clearTimeout(timer);
    await stopProcess(child, "SIGKILL");
  }
  if (revisions.length === 0 || revisions[revisions.length - 1] !== until) {
    throw new Error(`pharos watch --since ${since} did not reach revision ${until} (got ${revisions.join(" ")}); stderr: ${stderr}`);
  }
  return revisions;
}

export async function launchChromium() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  onCleanup(() => browser.close());
  return browser;
}

/** The hidden #stream-state element's attributes (see src/ui/common.tsx StreamState). */
export async function streamState(page) {
  return page.evaluate(() => {
    const el = document.getElementById("stream-state");
    if (!el) return null;
    const d = el.dataset;
    return {
      state: d.state,
      ready: d.ready === "true",
      lastRevision: Number(d.lastRevision),
      snapshotRevision: Number(d.snapshotRevision),
      appliedTotal: Number(d.appliedTotal),
      applied: d.applied ? d.applied.split(" ").map(Number) : [],
      duplicatesDropped: Number(d.duplicatesDropped),
      resyncs: Number(d.resyncs),
    };
  });
}

export const screenshots = [];

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
  return file;
}

/** A catalog of real targets: one deployment per entry of `targets`. */
export function catalogYaml(targets, { interval = "200ms", timeout = "150ms" } = {}) {
  const lines = [
    "environments:",
    "  - id: e2e",
    "    name: End-to-end",
    "    port_range: 20000-29999",
    "projects:",
  ];
  for (const t of targets) {
    lines.push(
      `  - id: ${t.project}`,
      `    name: ${t.name ?? t.project}`,
      "    type: service",
      `    description: ${t.description ?? "A real HTTP server started by the test."}`,
      "    deployments:",
      "      - environment: e2e",
    );
    if (t.port) {
      lines.push("        ports:", `          - port: ${t.port}`, "            type: http", `            service: ${t.project}`);
    }
    lines.push(
      "        checks:",
      "          - name: http",
      "            http:",
      `              url: ${t.url}`,
      "              expect_status: [200]",
      `            interval: ${t.interval ?? interval}`,
      `            timeout: ${t.timeout ?? timeout}`,
      "            unhealthy_after: 1",
    );
  }
  return `${lines.join("\n")}\n`;
}
