// Keyboard access and readability of every page in light and dark schemes: axe-core's
// WCAG 2 A/AA rules (contrast included) on the live pages, focus order and a visible
// focus ring, in Debian's Chromium against a real pharosd.

import assert from "node:assert/strict";
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

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

const PAGES = [
  { name: "system", hash: "#/", ready: 'li[data-deployment="web/e2e"][data-status="ok"]' },
  { name: "projects", hash: "#/projects", ready: 'tr[data-project="web"]' },
  { name: "project", hash: "#/projects/web", ready: ".chart canvas" },
];

let browser;
let pharosd;

before(async () => {
  browser = await launchChromium();
  const dir = tempDir("pharos-e2e-a11y-");
  const target = await startHttpTarget(await freePort());
  const catalog = path.join(dir, "catalog.yaml");
  writeAtomic(catalog, catalogYaml([{ project: "web", name: "Web target", url: target.url, port: 20000, interval: "1s", timeout: "500ms" }]));
  pharosd = await Pharosd.start(dir, { catalog });
});

after(async () => {
  await cleanup();
  if (screenshots.length) console.log(`screenshots:\n${screenshots.map((f) => `  ${f}`).join("\n")}`);
});

async function openLive(page, spec) {
  await page.goto(`${pharosd.url}/${spec.hash}`);
  await page.locator(spec.ready).first().waitFor({ timeout: 15_000 });
  await waitFor(async () => (await streamState(page))?.state === "live", { what: "a live stream" });
}

async function axeViolations(page) {
  await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.map((v) => ({
      id: v.id,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
    }));
  });
}

describe("accessibility", () => {
  for (const scheme of ["light", "dark"]) {
    test(`every page passes axe WCAG 2 A/AA in the ${scheme} scheme`, async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: scheme });
      try {
        for (const spec of PAGES) {
          await openLive(page, spec);
          const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
          // The scheme really applied (styles.css: #f6f7f9 light, #111418 dark).
          assert.equal(background, scheme === "light" ? "rgb(246, 247, 249)" : "rgb(17, 20, 24)");
          const violations = await axeViolations(page);
          assert.deepEqual(violations, [], `${spec.name} (${scheme}): ${JSON.stringify(violations, null, 2)}`);
          await screenshot(page, `${spec.name}-${scheme}`);
        }
      } finally {
        await page.close();
      }
    });
  }

  test("keyboard: skip link first, visible focus, every page reachable with Tab and Enter", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await openLive(page, PAGES[0]);
      const focused = () =>
        page.evaluate(() => {
          const el = document.activeElement;
          const style = getComputedStyle(el);
          const box = el.getBoundingClientRect();
          return {
            tag: el.tagName.toLowerCase(),
            id: el.id,
            text: (el.textContent ?? "").trim(),
            href: el.getAttribute("href"),
            outline: style.outlineStyle === "none" ? 0 : parseFloat(style.outlineWidth),
            visible: box.width > 0 && box.height > 0 && box.left >= 0 && box.top >= 0 && box.right <= innerWidth,
          };
        });

      await page.keyboard.press("Tab");
      let f = await focused();
      assert.equal(f.text, "Skip to content", "the first Tab stop is the skip link");
      assert.ok(f.visible, "the skip link is on screen when focused");
      assert.ok(f.outline >= 2, `the skip link's focus ring is ${f.outline}px`);
      await page.keyboard.press("Enter");
      f = await focused();
      assert.equal(f.id, "main", "the skip link moves focus to the content");

      // From the top: brand, then the two pages of the main navigation, in order.
      await page.reload();
      await page.locator(PAGES[0].ready).waitFor({ timeout: 15_000 });
      const order = [];
      for (let i = 0; i < 4; i++) {
        await page.keyboard.press("Tab");
        f = await focused();
        assert.ok(f.outline >= 2 && f.visible, `focus on "${f.text}" is not visible (outline ${f.outline}px)`);
        order.push(f.text.replace(/\s+/g, " "));
      }
      assert.deepEqual(order, ["Skip to content", "◭Pharos", "System", "Projects"]);
      await page.keyboard.press("Enter");
      await page.locator(PAGES[1].ready).waitFor({ timeout: 10_000 });
      assert.equal(new URL(page.url()).hash, "#/projects");

      // Tab on to the project's link and open it with Enter.
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press("Tab");
        f = await focused();
        assert.ok(f.outline >= 2 && f.visible, `focus on <${f.tag}> "${f.text}" is not visible`);
        if (f.href === "#/projects/web") break;
      }
      assert.equal(f.href, "#/projects/web", "the project link is reachable with Tab");
      await page.keyboard.press("Enter");
      await page.locator(PAGES[2].ready).waitFor({ timeout: 10_000 });
      assert.equal(new URL(page.url()).hash, "#/projects/web");
    } finally {
      await page.close();
    }
  });
});
