// Log-list scrolling benchmark of the web UI (issue #6: "a virtualized list that stays smooth at 100k rows"),
// run by bench/ui-scroll.sh: playwright-core (from tests/e2e/browser/node_modules) driving Debian's chromium.
//
//   node bench/ui/scroll.mjs <spec.json>
//
// Spec: {"base": "http://127.0.0.1:PORT", "path": "/logs?query=...&limit=1000", "target": 100000,
//        "frames": 240, "timeoutMs": 600000}
//
// One page: open the log explorer with 1,000 rows, measure two scroll sweeps (the baseline), press
// "Load more" until the list holds `target` rows (each press loads the next 1,000 through the cursor), then
// measure the same sweeps again. A sweep moves the list's scroll offset once per animation frame for
// `frames` frames and records the time between frames (what the user sees as smoothness; 16.7 ms at 60 Hz):
//   wheel  120 px per frame down from the middle of the list (steady wheel or trackpad scrolling);
//   jump   a pseudo-random offset anywhere in the list every frame (dragging the scrollbar: every frame
//          renders rows never rendered before).
// Also reported: the rows in the DOM (virtualization keeps it near the view's height), the JS heap
// (CDP Performance.getMetrics), and the time "Load more" took per 1,000 rows.
// Prints one JSON object: {"browser", "baseline": {rows, wheel, jump, domRows, heapMB}, "loaded": {...},
// "load": {presses, totalMs, perPressMedianMs, perPressMaxMs, rowsReached}}.

import { readFileSync } from "node:fs";

// The browser tests' launcher, so that playwright-core resolves from tests/e2e/browser/node_modules.
let CHROMIUM, launchChromium;
try {
  ({ CHROMIUM, launchChromium } = await import(new URL("../../tests/e2e/browser/launch.mjs", import.meta.url).href));
} catch (e) {
  process.stderr.write(`scroll.mjs: playwright-core is not installed in tests/e2e/browser (npm ci there): ${e.message}\n`);
  process.exit(2);
}
const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const TARGET = spec.target ?? 100_000;
const FRAMES = spec.frames ?? 240;
const TIMEOUT = spec.timeoutMs ?? 600_000;
const LIST = "[data-testid=log-list]";

const rowCount = (page) => page.$eval(LIST, (el) => Number(el.getAttribute("data-row-count")));

// Runs in the page (serialised by playwright): one sweep, the frame intervals in ms.
async function sweep({ sel, mode, frames }) {
  const el = document.querySelector(sel);
  const max = el.scrollHeight - el.clientHeight;
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  el.scrollTop = mode === "wheel" ? Math.floor(max / 2) : 0;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const gaps = [];
  let last = performance.now();
  await new Promise((done) => {
    let n = 0;
    const step = (t) => {
      gaps.push(t - last);
      last = t;
      if (++n > frames) return done();
      el.scrollTop = mode === "wheel" ? Math.min(max, el.scrollTop + 120) : Math.floor(rand() * max);
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  gaps.shift(); // the first gap is from before the sweep started
  return { gaps, domRows: document.querySelectorAll("[data-testid=log-row]").length };
}

function stats(gaps) {
  const s = [...gaps].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor((s.length - 1) * p))];
  return {
    frames: s.length,
    p50Ms: +q(0.5).toFixed(2),
    p95Ms: +q(0.95).toFixed(2),
    p99Ms: +q(0.99).toFixed(2),
    maxMs: +s[s.length - 1].toFixed(2),
    over33Ms: s.filter((g) => g > 33.4).length,
    fps: +(1000 / (s.reduce((a, b) => a + b, 0) / s.length)).toFixed(1),
  };
}

async function measure(page, cdp) {
  const out = { rows: await rowCount(page) };
  for (const mode of ["wheel", "jump"]) {
    const r = await page.evaluate(sweep, { sel: LIST, mode, frames: FRAMES });
    out[mode] = stats(r.gaps);
    out.domRows = Math.max(out.domRows ?? 0, r.domRows);
  }
  const { metrics } = await cdp.send("Performance.getMetrics");
  const heap = metrics.find((m) => m.name === "JSHeapUsedSize");
  out.heapMB = heap ? +(heap.value / 1048576).toFixed(1) : null;
  return out;
}

let browser;
try {
  browser = await launchChromium();
} catch (e) {
  process.stderr.write(`scroll.mjs: cannot start ${CHROMIUM}: ${e.message}\n`);
  process.exit(2);
}
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(spec.base + spec.path);
  await page.waitForSelector(`${LIST}[data-row-count="1000"]`, { timeout: 30_000 });
  const baseline = await measure(page, cdp);

  const t0 = Date.now();
  const perPress = [];
  let rows = await rowCount(page);
  while (rows < TARGET && Date.now() - t0 < TIMEOUT) {
    const more = await page.$("[data-testid=logs-load-more]");
    if (!more) break;
    const p0 = Date.now();
    await more.click();
    await page.waitForFunction(
      ({ sel, before }) => Number(document.querySelector(sel)?.getAttribute("data-row-count")) > before,
      { sel: LIST, before: rows },
      { timeout: 60_000 },
    );
    perPress.push(Date.now() - p0);
    rows = await rowCount(page);
  }
  const totalMs = Date.now() - t0;
  const loaded = await measure(page, cdp);
  const sorted = [...perPress].sort((a, b) => a - b);
  process.stdout.write(
    JSON.stringify({
      browser: browser.version(),
      baseline,
      loaded,
      load: {
        presses: perPress.length,
        totalMs,
        perPressMedianMs: sorted[Math.floor(sorted.length / 2)] ?? null,
        perPressMaxMs: sorted[sorted.length - 1] ?? null,
        rowsReached: rows,
      },
      errors: errors.slice(0, 5),
    }) + "\n",
  );
} finally {
  await browser.close();
}
