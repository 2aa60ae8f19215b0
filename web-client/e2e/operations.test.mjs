// End-to-end: the Operations page against a real pharosd and a real Podman (Docker
// Engine API on a private socket, see podman.mjs). A restart from the UI shows its steps
// live and the container really restarts: its start time, read from the engine with
// `podman inspect`, changes. A viewer's token gets the server's refusal verbatim.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  Pharosd,
  catalogYaml,
  cleanup,
  freePort,
  launchChromium,
  screenshot,
  screenshots,
  startHttpTarget,
  streamState,
  tempDir,
  waitFor,
  writeAtomic,
} from "./harness.mjs";
import { TestPodman } from "./podman.mjs";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

/** axe-core's WCAG 2 A/AA violations on the page as it is. */
async function axeViolations(page) {
  await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  });
}

const OPERATOR_TOKEN = "e2e-operator-token";
const VIEWER_TOKEN = "e2e-viewer-token";
const sha256 = (text) => createHash("sha256").update(text).digest("hex");

let browser;
let podman;
let pharosd;
let containerId;

before(async () => {
  browser = await launchChromium();
  podman = await TestPodman.start();
  const dir = tempDir("pharos-e2e-ops-");
  const target = await startHttpTarget(await freePort());
  const catalogPath = path.join(dir, "catalog.yaml");
  writeAtomic(catalogPath, catalogYaml([{ project: "shop", name: "Shop", url: target.url }]));
  const configPath = path.join(dir, "config.yaml");
  writeFileSync(
    configPath,
    [
      "tokens:",
      "  - name: ops",
      "    role: operator",
      `    sha256: ${sha256(OPERATOR_TOKEN)}`,
      "  - name: watcher",
      "    role: viewer",
      `    sha256: ${sha256(VIEWER_TOKEN)}`,
      "",
    ].join("\n"),
  );
  // sh as PID 1 ignores SIGTERM unless it traps it: the trap lets a restart stop it at once.
  containerId = await podman.run(
    { "pharos.project": "shop", "pharos.environment": "e2e" },
    ["sh", "-c", 'trap "exit 0" TERM; while :; do echo tick; sleep 0.2; done'],
    ["--name", "shop-web"],
  );
  pharosd = await Pharosd.start(dir, {
    catalog: catalogPath,
    extraArgs: ["--config", configPath, "--docker-host", podman.dockerHost, "--progress-interval", "1s"],
  });
});

after(async () => {
  await cleanup();
  if (screenshots.length) console.log(`screenshots:\n${screenshots.map((f) => `  ${f}`).join("\n")}`);
});

/** A page whose session already holds `token` (as the sign-in form would store it). */
async function pageWithToken(token) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.addInitScript((value) => sessionStorage.setItem("pharos.token", value), token);
  return page;
}

async function openOperations(page) {
  await page.goto(`${pharosd.url}/#/operations/shop/e2e`);
  await waitFor(async () => (await streamState(page))?.state === "live", { timeoutMs: 15_000, what: "the stream to be live" });
  await page.locator('tr[data-container="shop-web"][data-state="running"]').waitFor({ timeout: 15_000 });
}

/** Every row of the Logs page's list, scrolled through a screen at a time (it is virtualised). */
async function allLogRows(page) {
  const rows = new Map();
  const scroller = page.locator(".log-scroller");
  const height = await scroller.evaluate((el) => el.scrollHeight);
  for (let top = 0; top <= height; top += 400) {
    await scroller.evaluate((el, y) => {
      el.scrollTop = y;
      el.dispatchEvent(new Event("scroll"));
    }, top);
    await page.waitForTimeout(20);
    for (const [y, text] of await page
      .locator(".log-row")
      .evaluateAll((els) => els.map((el) => [el.style.transform, el.innerText]))) {
      rows.set(Number(y.replace(/[^0-9]/g, "")), text);
    }
  }
  return [...rows.entries()].sort((a, b) => a[0] - b[0]).map(([, text]) => text);
}

describe("operations against a real pharosd and Podman", () => {
  test("a restart from the UI shows its steps and the container really restarts", async () => {
    const page = await pageWithToken(OPERATOR_TOKEN);
    await openOperations(page);
    const before = await podman.startedAt(containerId);
    const rowStarted = await page.locator('tr[data-container="shop-web"]').getAttribute("data-started");

    // Escape cancels the dialog: nothing is done.
    await page.locator('button[data-action="RESTART"]').click();
    const dialog = page.locator("dialog.confirm-dialog");
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), "confirm-reason", "focus starts in the reason");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    assert.equal(await page.locator(".op-progress").count(), 0);

    // An empty reason is refused in the dialog; with a reason, the restart runs.
    await page.locator('button[data-action="RESTART"]').click();
    await dialog.waitFor();
    await dialog.locator('button[type="submit"]').click();
    await page.locator("#confirm-missing").waitFor();
    await page.locator("#confirm-reason").fill("e2e: restart from the dashboard");
    await page.keyboard.press("Tab");
    await dialog.locator('button[type="submit"]').click();
    await dialog.waitFor({ state: "detached" });

    const progress = page.locator(".op-progress");
    await progress.waitFor({ timeout: 10_000 });
    await page.locator('.op-progress[data-state="SUCCEEDED"]').waitFor({ timeout: 30_000 });
    const steps = await page.locator(".op-steps li").evaluateAll((els) => els.map((el) => el.dataset.stepState));
    assert.ok(steps.length >= 1, "the operation lists its steps");
    assert.ok(steps.every((s) => s === "SUCCEEDED"), `every step succeeded: ${steps}`);
    assert.match(await page.locator(".op-steps").innerText(), /shop-web/);

    // The engine says the container started again.
    const after = await waitFor(async () => {
      const now = await podman.startedAt(containerId);
      return now !== before ? now : null;
    }, { timeoutMs: 10_000, what: "podman inspect to show a new StartedAt" });
    assert.ok(new Date(after) > new Date(before), `StartedAt moved forward: ${before} → ${after}`);
    // And the page's containers panel shows the new start time from the stream.
    await waitFor(async () => {
      const value = await page.locator('tr[data-container="shop-web"]').getAttribute("data-started");
      return value !== rowStarted && value !== "";
    }, { timeoutMs: 10_000, what: "the containers panel to show the new start time" });

    // The audit list, newest first, holds the operation with its reason and actor.
    const auditRow = page.locator(".audit-table tbody tr").first();
    await waitFor(async () => /succeeded/.test(await auditRow.innerText()), { timeoutMs: 10_000, what: "the audit row" });
    const text = await auditRow.innerText();
    assert.match(text, /Restart/);
    assert.match(text, /ops/);
    assert.match(text, /e2e: restart from the dashboard/);
    await screenshot(page, "operations");
    await page.close();
  });

  test("a dry run of a scale lists its steps and changes nothing", async () => {
    const page = await pageWithToken(OPERATOR_TOKEN);
    await openOperations(page);
    const containersBefore = await podman.podman("ps", "-aq");
    await page.locator('button[data-action="SCALE"]').click();
    await page.locator("#confirm-replicas").fill("0");
    await page.locator("#confirm-reason").fill("e2e: plan a scale");
    await page.locator('dialog.confirm-dialog input[type="checkbox"]').check();
    await page.locator('dialog.confirm-dialog button[type="submit"]').click();
    await page.locator('.op-progress[data-state="PLANNED"]').waitFor({ timeout: 10_000 });
    assert.ok((await page.locator(".op-steps li").count()) >= 1, "the plan lists its steps");
    const row = page.locator(".audit-table tbody tr").first();
    await waitFor(async () => /dry run/.test(await row.innerText()), { timeoutMs: 10_000, what: "the dry run in the audit list" });
    assert.match(await row.innerText(), /Scale to 0/);
    assert.equal(await podman.podman("ps", "-aq"), containersBefore, "a dry run creates no container");
    await page.close();
  });

  test("a viewer's token: WhoAmI names the role, no action buttons, and the server refuses the call anyway", async () => {
    const page = await pageWithToken(VIEWER_TOKEN);
    await openOperations(page);
    const note = page.locator('[data-testid="role-note"]');
    await note.waitFor({ timeout: 10_000 });
    assert.match(await note.innerText(), /Signed in as watcher \(viewer\)/);
    assert.equal(await page.locator("button[data-action]").count(), 0, "no action buttons for a viewer");
    // The buttons are only an offer: the same call from the page's own client is refused.
    const refused = await page.evaluate(async (token) => {
      const res = await fetch("/pharos.v1.ActionService/StopDeployment", {
        method: "POST",
        headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", authorization: `Bearer ${token}` },
        body: new Uint8Array([0, 0, 0, 0, 0]),
      });
      return { status: res.headers.get("grpc-status"), message: decodeURIComponent(res.headers.get("grpc-message") ?? "") };
    }, VIEWER_TOKEN);
    assert.equal(refused.status, "7", JSON.stringify(refused));
    assert.match(refused.message, /needs the operator role; "watcher" has viewer/);
    assert.equal(await podman.podman("inspect", "--format", "{{.State.Status}}", containerId), "running");
    await page.close();
  });

  test("the project page lists the container with its state and restarts", async () => {
    const page = await pageWithToken(OPERATOR_TOKEN);
    await page.goto(`${pharosd.url}/#/projects/shop`);
    const row = page.locator('tr[data-container="shop-web"][data-state="running"]');
    await row.waitFor({ timeout: 15_000 });
    const text = await row.innerText();
    assert.match(text, /shop\/e2e/);
    assert.match(text, /running/);
    await screenshot(page, "project-containers");
    await page.close();
  });

  test("the operations page, its dialog and the logs page pass axe WCAG 2 A/AA in light and dark", async () => {
    for (const colorScheme of ["light", "dark"]) {
      const page = await pageWithToken(OPERATOR_TOKEN);
      await page.emulateMedia({ colorScheme });
      await openOperations(page);
      assert.deepEqual(await axeViolations(page), [], `operations, ${colorScheme}`);
      await page.locator('button[data-action="ROLLOUT_RESTART"]').click();
      await page.locator("dialog.confirm-dialog").waitFor();
      assert.deepEqual(await axeViolations(page), [], `confirm dialog, ${colorScheme}`);
      await page.keyboard.press("Escape");
      await page.locator("dialog.confirm-dialog").waitFor({ state: "detached" });
      // Focus returns to the button that opened the dialog.
      assert.equal(await page.evaluate(() => document.activeElement?.dataset.action), "ROLLOUT_RESTART");
      await page.goto(`${pharosd.url}/#/logs/shop-web`);
      await page.locator('[data-log-stream="open"]').waitFor({ timeout: 10_000 });
      await page.locator(".log-row").first().waitFor({ timeout: 10_000 });
      assert.deepEqual(await axeViolations(page), [], `logs, ${colorScheme}`);
      await page.close();
    }
  });

  test("logs: lines a busybox container prints appear, virtualised, and the filter keeps the matching ones", async () => {
    await podman.run(
      { "pharos.project": "shop", "pharos.environment": "e2e" },
      ["sh", "-c", 'for i in $(seq 1 3000); do echo "line-$i"; done; trap "exit 0" TERM; while :; do echo heartbeat; sleep 0.3; done'],
      ["--name", "shop-logs"],
    );
    const page = await pageWithToken(VIEWER_TOKEN);
    await openOperations(page);
    // From the containers panel to the container's log.
    await page.locator('tr[data-container="shop-logs"] a[aria-label="Logs of shop-logs"]').click({ timeout: 15_000 });
    await page.locator('[data-log-stream="open"]').waitFor({ timeout: 10_000 });
    const kept = async () => Number((await page.locator('[data-testid="log-counts"]').innerText()).split(" kept")[0].split("·").pop().replace(/[^0-9]/g, ""));
    await waitFor(async () => (await kept()) >= 1000, { timeoutMs: 10_000, what: "the last 1000 lines in the buffer" });
    // Following: the newest lines are in view; only the visible rows are in the DOM.
    await page.locator(".log-row", { hasText: "heartbeat" }).first().waitFor({ timeout: 10_000 });
    const rows = await page.locator(".log-row").count();
    assert.ok(rows > 0 && rows < 100, `only visible rows are rendered (${rows} of ${await kept()})`);

    await page.locator("#log-filter").fill("line-299");
    await waitFor(async () => /^10 shown/.test(await page.locator('[data-testid="log-counts"]').innerText()), {
      timeoutMs: 5000,
      what: "the filter to keep line-2990..2999 of the last 1000",
    });
    const texts = await page.locator(".log-row").allInnerTexts();
    assert.equal(texts.length, 10);
    assert.ok(texts.every((t) => t.includes("line-299")), `filtered rows: ${texts}`);
    await page.locator("#log-filter").fill("");

    // The last 5000 lines: every printed line is there.
    await page.locator("#log-tail").fill("5000");
    await page.locator("#log-tail").press("Enter");
    await waitFor(async () => (await kept()) >= 3000, { timeoutMs: 10_000, what: "3000 lines after asking for 5000" });
    await page.locator("#log-filter").fill("line-1");
    await waitFor(async () => /^1,?111 shown/.test(await page.locator('[data-testid="log-counts"]').innerText()), {
      timeoutMs: 5000,
      what: "1111 lines starting line-1 among line-1..line-3000",
    }).catch(async (err) => {
      const counts = await page.locator('[data-testid="log-counts"]').innerText();
      const shown = await allLogRows(page);
      const expected = new Set();
      for (let i = 1; i <= 3000; i++) if (`line-${i}`.includes("line-1")) expected.add(`line-${i}`);
      const texts = shown.map((t) => t.replace(/^\S+ /, ""));
      const missing = [...expected].filter((l) => !texts.includes(l));
      const unexpected = texts.filter((t) => !expected.has(t));
      throw new Error(`${err.message}; counts: ${counts}; missing: ${missing.join(", ")}; unexpected: ${JSON.stringify(unexpected.slice(0, 5))}`);
    });
    await page.locator("#log-filter").fill("");
    await screenshot(page, "logs");
    await page.close();
  });

  test("logs: 100,000 lines in the buffer, only visible rows in the DOM, scrolling lands on the right lines", async () => {
    await podman.run(
      { "pharos.project": "shop", "pharos.environment": "e2e" },
      // Printed after the page is following: Podman's API is slow to serve a large tail.
      ["sh", "-c", 'trap "exit 0" TERM; echo waiting; while [ ! -e /go ]; do sleep 0.1; done; seq 1 120000; while :; do sleep 1; done'],
      ["--name", "shop-big"],
    );
    const page = await pageWithToken(VIEWER_TOKEN);
    await openOperations(page);
    await page.locator('tr[data-container="shop-big"] a[aria-label="Logs of shop-big"]').click({ timeout: 15_000 });
    // The stream is open at the engine once the line printed before the wait is shown.
    await page.locator(".log-row", { hasText: "waiting" }).waitFor({ timeout: 10_000 });
    await podman.podman("exec", "shop-big", "sh", "-c", ": > /go");
    const counts = page.locator('[data-testid="log-counts"]');
    await waitFor(async () => /^100,000 shown · 100,000 kept \(at most 100,000\) · 20,\d{3} older dropped/.test(await counts.innerText()), {
      timeoutMs: 30_000,
      what: "the last 100,000 of 120,000 followed lines",
    }).catch(async (err) => {
      throw new Error(`${err.message}; counts: ${await counts.innerText()}; ${await page.locator(".error-note").allInnerTexts()}`);
    });
    assert.ok((await page.locator(".log-row").count()) < 100, "only visible rows are rendered");
    await page.locator(".log-row", { hasText: /^\S+ 120000$/ }).waitFor({ timeout: 5000 });
    await page.locator("#log-pause").click();
    // Halfway down the 100,000 kept lines are the lines around 70,000 (the engine may
    // repeat a few lines of a followed log, so not exactly 70,001).
    await page.locator(".log-scroller").evaluate((el) => {
      el.scrollTop = 50_000 * 20;
    });
    await waitFor(async () => {
      const texts = await page.locator(".log-row").allInnerTexts();
      const numbers = texts.map((t) => Number(t.split(" ").pop()));
      return numbers.length > 0 && numbers.every((n) => n > 65_000 && n < 75_000);
    }, { timeoutMs: 5000, what: "the rows around line 70,000 after scrolling halfway" });
    assert.ok((await page.locator(".log-row").count()) < 100, "still only visible rows after scrolling");
    await page.close();
  });
  test("logs: a followed log goes on across a pharosd restart, nothing repeated or lost", async () => {
    await podman.run(
      { "pharos.project": "shop", "pharos.environment": "e2e" },
      ["sh", "-c", 'trap "exit 0" TERM; i=0; while :; do echo "n $i"; i=$((i+1)); sleep 0.05; done'],
      ["--name", "shop-counter"],
    );
    const page = await pageWithToken(VIEWER_TOKEN);
    await openOperations(page);
    await page.locator('tr[data-container="shop-counter"] a[aria-label="Logs of shop-counter"]').click({ timeout: 15_000 });
    await page.locator(".log-row", { hasText: /n \d+$/ }).first().waitFor({ timeout: 10_000 });
    const newest = async () => {
      const texts = await page.locator(".log-row").allInnerTexts();
      return Math.max(-1, ...texts.map((t) => Number(t.split(" ").pop())).filter(Number.isFinite));
    };
    await pharosd.stop();
    await page.locator('[data-log-stream="reconnecting"]').waitFor({ timeout: 10_000 });
    const before = await newest();
    await pharosd.start();
    await waitFor(async () => (await newest()) > before + 20, { timeoutMs: 15_000, what: "lines printed after the restart" });
    assert.equal(await page.locator('[data-log-stream="open"]').count(), 1);
    await page.locator("#log-pause").click();
    const numbers = (await allLogRows(page)).map((t) => Number(t.split(" ").pop()));
    const gaps = numbers.filter((n, i) => i > 0 && n !== numbers[i - 1] + 1);
    assert.deepEqual(gaps, [], `every line once, in order: ${numbers.join(",")}`);
    await page.close();
  });
});
