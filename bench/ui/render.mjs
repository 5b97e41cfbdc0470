// First-render benchmark of the web UI (issue #6), run by bench/ui.sh: playwright-core (installed in
// tests/e2e/browser/node_modules) driving Debian's chromium (/usr/bin/chromium, or $SIGHTLINE_CHROMIUM).
//
//   node bench/ui/render.mjs <spec.json>
//
// Spec: {"base": "http://127.0.0.1:PORT", "runs": N, "timeoutMs": 10000, "pages": [
//          {"name": "logs", "path": "/logs?query=...&limit=1000", "kind": "logs", "expect": {"rows": 1000}},
//          {"name": "dashboard", "path": "/dashboards/ID", "kind": "dashboard",
//           "expect": {"widgets": 11, "charts": 3, "values": 3, "toplistRows": 1, "logRows": 1, "heatmaps": 1}},
//          {"name": "shell", "path": "/", "kind": "shell"}, ...]}
//
// Each visit: a page whose init script (CDP-injected before the app's scripts, so not subject to the CSP)
// checks the page's state on every animation frame and records `performance.now()` (ms since navigation
// start) of the first frame in which the page is "done" for its kind:
//   shell      the app's navigation bar is in the DOM (index.html, CSS and JS loaded and run);
//   logs-empty the log summary says that nothing matched (the same route, its search answered empty);
//   logs       `[data-testid=log-list][data-row-count="<rows>"]` and a `log-row` with a non-empty box
//              (without the attribute, the number of `log-row` elements counts as the rows loaded);
//   dashboard  the expected number of `widget` cards, none holding a loading marker (`.loading`, the
//              "Loading…" of widgets.tsx `Body` and common.tsx `Loading`), every `widget-chart` with
//              `data-series-count` >= 1 (and at least `charts` of them), `heatmaps` `heatmap-canvas` elements with
//              `data-cells` > 0 (cells painted), `values` `widget-value`s none of
//              them empty or "—", `toplistRows` toplist rows, `logRows` log-stream rows, no `widget-error`;
//   dashboard-empty the dashboard's title is shown and nothing is loading (a dashboard without widgets).
// The frame in which the condition first holds is the frame that paints it (rAF runs before paint).
// A visit that is not done after `timeoutMs` is reported with done=false and what it reached (for logs the
// row count reached and when the list last grew).
// Cold: every run in a fresh browser context (empty HTTP cache). Warm: one context, one unmeasured visit of
// the page, then every run in a new page of that context (index.html revalidated, hashed assets from cache).
// Prints one JSON object: {"browser", "runs", "pages": {name: {"cold": [visit...], "warm": [visit...]}}}.

import { readFileSync } from "node:fs";

// The browser tests' launcher, so that playwright-core resolves from tests/e2e/browser/node_modules.
let CHROMIUM, launchChromium;
try {
  ({ CHROMIUM, launchChromium } = await import(new URL("../../tests/e2e/browser/launch.mjs", import.meta.url).href));
} catch (e) {
  process.stderr.write(`render.mjs: playwright-core is not installed in tests/e2e/browser (npm ci there): ${e.message}\n`);
  process.exit(2);
}

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const RUNS = spec.runs ?? 10;
const TIMEOUT = spec.timeoutMs ?? 10_000;

// Runs in the page before its own scripts. Must be self-contained (serialised by playwright).
function installProbe({ kind, expect }) {
  const st = { kind, done: false, t: null, firstRowT: null, rows: 0, rowsT: null, detail: null, frames: 0 };
  Object.defineProperty(window, "__bench", { value: st });
  const q = (sel) => document.querySelectorAll(sel);
  const boxed = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const checks = {
    shell: () => document.querySelector("nav [data-testid^=nav-], [data-testid^=nav-]") !== null,
    "logs-empty": () => {
      const s = document.querySelector("[data-testid=log-summary]");
      return !!s && /No logs match/.test(s.textContent || "");
    },
    logs: () => {
      const list = document.querySelector("[data-testid=log-list]");
      const first = document.querySelector("[data-testid=log-row]");
      if (first && st.firstRowT === null && boxed(first)) st.firstRowT = performance.now();
      let rows = 0;
      let attr = null;
      if (list) {
        attr = list.getAttribute("data-row-count");
        rows = attr !== null ? Number(attr) : q("[data-testid=log-row]").length;
      }
      if (rows !== st.rows) {
        st.rows = rows;
        st.rowsT = performance.now();
      }
      st.detail = { rowCountAttribute: attr !== null };
      return attr !== null && rows === expect.rows && !!first && boxed(first);
    },
    dashboard: () => {
      const cards = [...q("[data-testid=widget]")];
      const charts = [...q("[data-testid=widget-chart]")];
      const values = [...q("[data-testid=widget-value]")].map((e) => (e.textContent || "").trim());
      const d = {
        widgets: cards.length,
        loading: cards.filter((c) => c.querySelector(".loading")).length + (document.querySelector("section.dashboard > .loading, main > .loading") ? 1 : 0),
        charts: charts.length,
        chartsWithSeries: charts.filter((c) => Number(c.getAttribute("data-series-count") || 0) >= 1).length,
        values: values.filter((v) => v !== "" && v !== "—").length,
        toplistRows: q("[data-testid=toplist-row]").length,
        logRows: q("[data-testid=widget-log-row]").length,
        heatmapsPainted: [...q("[data-testid=heatmap-canvas]")].filter((c) => Number(c.getAttribute("data-cells") || 0) > 0).length,
        errors: [...q("[data-testid=widget-error]")].map((e) => (e.textContent || "").slice(0, 200)),
      };
      st.detail = d;
      return d.widgets === expect.widgets && d.loading === 0 && d.charts >= expect.charts &&
        d.chartsWithSeries === d.charts && d.values >= expect.values && d.toplistRows >= expect.toplistRows &&
        d.logRows >= expect.logRows && d.heatmapsPainted >= (expect.heatmaps ?? 0) && d.errors.length === 0;
    },
    "dashboard-empty": () =>
      document.querySelector("[data-testid=dashboard-title]") !== null && document.querySelector(".loading") === null,
  };
  const check = checks[kind];
  const frame = () => {
    st.frames++;
    let ok = false;
    try {
      ok = !!document.body && check();
    } catch (e) {
      st.detail = { probeError: String(e) };
    }
    if (ok) {
      st.done = true;
      st.t = performance.now();
      return;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

async function visit(context, base, p) {
  const page = await context.newPage();
  const errors = [];
  const failed = [];
  page.on("pageerror", (e) => errors.push(String(e).slice(0, 300)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text().slice(0, 300)));
  page.on("response", (r) => r.status() >= 400 && failed.push(`${r.status()} ${r.url()}`));
  await page.addInitScript(installProbe, { kind: p.kind, expect: p.expect ?? {} });
  const out = { done: false, ms: null };
  try {
    await page.goto(new URL(p.path, base).toString(), { waitUntil: "commit", timeout: 15_000 });
    await page
      .waitForFunction(() => window.__bench && window.__bench.done, null, { timeout: TIMEOUT, polling: 50 })
      .catch(() => {});
    const s = await page.evaluate(() => {
      const b = window.__bench;
      const nav = performance.getEntriesByType("navigation")[0];
      const res = performance.getEntriesByType("resource");
      return {
        done: b.done, ms: b.t, firstRowMs: b.firstRowT, rows: b.rows, rowsMs: b.rowsT, detail: b.detail,
        frames: b.frames,
        nav: nav ? { responseEnd: nav.responseEnd, domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
          transferBytes: nav.transferSize } : null,
        assetBytes: res.filter((r) => /\/assets\//.test(r.name)).reduce((a, r) => a + (r.transferSize || 0), 0),
        apiRequests: res.filter((r) => /\/api\//.test(r.name)).length,
      };
    });
    Object.assign(out, s);
  } catch (e) {
    out.error = e.message.split("\n")[0];
  }
  if (errors.length) out.errors = errors.slice(0, 5);
  if (failed.length) out.failedRequests = failed.slice(0, 5);
  await page.close().catch(() => {});
  return out;
}

let browser;
try {
  browser = await launchChromium();
} catch (e) {
  process.stderr.write(`render.mjs: cannot start ${CHROMIUM}: ${e.message}\n`);
  process.exit(2);
}
const ctxOpts = { viewport: { width: 1440, height: 900 } };
const pages = Object.fromEntries(spec.pages.map((p) => [p.name, { path: p.path, kind: p.kind, cold: [], warm: [] }]));
try {
  // Cold: pages interleaved within a run, so drift over time hits every page alike.
  for (let i = 0; i < RUNS; i++) {
    for (const p of spec.pages) {
      const context = await browser.newContext(ctxOpts);
      pages[p.name].cold.push(await visit(context, spec.base, p));
      await context.close();
    }
    process.stderr.write(`render.mjs: cold run ${i + 1}/${RUNS}\n`);
  }
  // Warm: one context per page, an unmeasured first visit, then the runs.
  for (const p of spec.pages) {
    const context = await browser.newContext(ctxOpts);
    await visit(context, spec.base, p);
    for (let i = 0; i < RUNS; i++) pages[p.name].warm.push(await visit(context, spec.base, p));
    await context.close();
  }
  process.stderr.write("render.mjs: warm runs done\n");
} finally {
  var version = browser.version();
  await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify({ browser: version, runs: RUNS, timeoutMs: TIMEOUT, pages }) + "\n");
