// Browser harness for Sightline's end-to-end UI tests: playwright-core driving Debian's chromium.
//
//   node tests/e2e/browser/run.mjs '<json spec>'      (or a path to a JSON file, or the spec on stdin)
//
// Spec:
//   {
//     "base": "http://127.0.0.1:7800",
//     "testids": ["log-row", ...],            // counted (and their texts collected) on every visit
//     "xssMarker": "__xss",                   // the window property XSS payloads set; also searched for in
//                                             // event-handler attributes and <script> text added to the DOM
//     "visits": [{
//       "path": "/logs",
//       "waitFor": "[data-testid=log-row]",   // CSS selector waited for (10 s), or null: wait for network idle
//       "waitForText": "some text",           // optional: also wait (10 s) until the body's text contains it
//       "screenshot": "/abs/path/logs.png",   // or null
//       "testids": ["..."],                   // optional, added to the top-level list for this visit
//       "attributes": [{"selector": "css", "names": ["data-x", ...]}],  // optional: read at the end, into
//                                             // `attributes[selector]`: per matching element {name: value|null}
//       "canvasPixels": ["css selector"],     // optional: per matching <canvas>, the number of painted pixels
//                                             // (alpha > 0), into `canvasPixels[selector]` (read at the end)
//       "actions": [                          // optional, run in order after waitFor
//         {"fill": "[data-testid=query-input]", "text": "service:a"},
//         {"press": "Enter", "selector": "[data-testid=query-input]"},   // selector optional (keyboard)
//         {"click": "css selector"},
//         {"select": "css selector of a <select>", "value": "option value"},
//         {"waitFor": "css selector", "state": "visible|attached|detached|hidden"},
//         {"waitForText": "text the body must come to contain"},
//         {"waitForRows": "log-row", "allContain": "text", "count": 3},  // >=1 such element (exactly
//                                             // `count` if given), every one's text containing `allContain`
//         {"waitForURL": "substring of the URL"},
//         {"drag": "css selector", "from": [0.2, 0.5], "to": [0.6, 0.5]},  // mouse down at `from`, move in
//                                             // steps, up at `to`; points are fractions of the element's box
//         {"sleep": 200}
//       ]
//     }]
//   }
//
// Prints one JSON object: {"browser": version, "results": [per visit {path, url, status, consoleErrors,
// pageErrors, failedRequests (status >= 400, or a network failure), abortedRequests (net::ERR_ABORTED),
// requests (every request made, {method, url}, the first 2,000), dialogs, xss, injected, counts, texts, text,
// waitForError, actionErrors, navigationError, screenshot, attributes, canvasPixels}]}.
// Checks that fail are reported, not thrown: the exit code is 0 whenever the browser started (pytest
// asserts); 2 when the spec is unusable or the browser cannot start.

import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { CHROMIUM, launchChromium } from "./launch.mjs";

const WAIT_MS = 10_000;
const SETTLE_MS = 3_000;
const TEXT_LIMIT = 20_000;
const TESTID_TEXTS_LIMIT = 500;
const REQUESTS_LIMIT = 2000;

function fail(message) {
  process.stderr.write(`run.mjs: ${message}\n`);
  process.exit(2);
}

function readSpec() {
  const arg = process.argv[2];
  let raw;
  if (arg === undefined || arg === "-") raw = readFileSync(0, "utf8");
  else if (arg.trimStart().startsWith("{")) raw = arg;
  else raw = readFileSync(arg, "utf8");
  try {
    return JSON.parse(raw);
  } catch (e) {
    fail(`the spec is not JSON: ${e.message}`);
  }
}

// Runs in every page before its own scripts (CDP injection: not subject to the page's CSP). Records every
// element that arrives in the DOM carrying the XSS marker where it could execute: an on* attribute, a
// javascript: URL, or <script> text. A UI that renders telemetry as HTML shows up here even when the
// Content-Security-Policy keeps the payload from running.
function installInjectionWatch(marker) {
  const found = [];
  const seen = new WeakSet();
  Object.defineProperty(window, "__sightlineInjected", { value: found });
  const check = (el) => {
    if (!(el instanceof Element) || seen.has(el)) return;
    const hits = [];
    for (const a of el.attributes) {
      const name = a.name.toLowerCase();
      const value = a.value;
      if ((name.startsWith("on") && value.includes(marker)) || (/^\s*javascript:/i.test(value) && value.includes(marker))) {
        hits.push(name);
      }
    }
    if (el.tagName === "SCRIPT" && (el.textContent || "").includes(marker)) hits.push("<script>");
    if (!hits.length) return;
    seen.add(el);
    if (found.length < 50) found.push(`${el.outerHTML.slice(0, 300)} [${hits.join(",")}]`);
  };
  const walk = (node) => {
    if (!(node instanceof Element)) return;
    check(node);
    for (const el of node.querySelectorAll("*")) check(el);
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "attributes") check(r.target);
      else for (const n of r.addedNodes) walk(n);
    }
  }).observe(document, { childList: true, subtree: true, attributes: true });
}

function waitForText(page, text) {
  return page.waitForFunction((t) => !!document.body && document.body.innerText.includes(t), text, {
    timeout: WAIT_MS,
  });
}

async function runAction(page, a) {
  if ("fill" in a) await page.fill(a.fill, a.text ?? "", { timeout: WAIT_MS });
  else if ("press" in a) {
    if (a.selector) await page.press(a.selector, a.press, { timeout: WAIT_MS });
    else await page.keyboard.press(a.press);
  } else if ("click" in a) await page.click(a.click, { timeout: WAIT_MS });
  else if ("select" in a) await page.selectOption(a.select, a.value, { timeout: WAIT_MS });
  else if ("waitFor" in a) await page.waitForSelector(a.waitFor, { state: a.state || "visible", timeout: WAIT_MS });
  else if ("waitForText" in a) await waitForText(page, a.waitForText);
  else if ("waitForRows" in a) {
    // A function, not a string: strings are eval'd in the page, which a strict CSP (no unsafe-eval) refuses.
    await page.waitForFunction(
      ({ testid, text, count }) => {
        const rows = [...document.querySelectorAll(`[data-testid="${CSS.escape(testid)}"]`)];
        return rows.length > 0 && (count == null || rows.length === count) &&
          (text == null || rows.every((r) => (r.innerText || "").includes(text)));
      },
      { testid: a.waitForRows, text: a.allContain ?? null, count: a.count ?? null },
      { timeout: WAIT_MS },
    );
  }
  else if ("drag" in a) {
    const el = await page.waitForSelector(a.drag, { state: "visible", timeout: WAIT_MS });
    const box = await el.boundingBox();
    if (!box) throw new Error(`${a.drag} has no box`);
    const at = ([fx, fy]) => [box.x + box.width * fx, box.y + box.height * fy];
    const [x0, y0] = at(a.from ?? [0.25, 0.5]);
    const [x1, y1] = at(a.to ?? [0.75, 0.5]);
    await page.mouse.move(x0, y0);
    await page.mouse.down();
    await page.mouse.move(x1, y1, { steps: 10 });
    await page.mouse.up();
  }
  else if ("waitForURL" in a) await page.waitForURL((u) => u.toString().includes(a.waitForURL), { timeout: WAIT_MS });
  else if ("sleep" in a) await page.waitForTimeout(a.sleep);
  else throw new Error(`unknown action ${JSON.stringify(a)}`);
}

async function visit(browser, spec, v) {
  const marker = spec.xssMarker || "__xss";
  const out = {
    path: v.path, url: null, status: null, consoleErrors: [], pageErrors: [], failedRequests: [], abortedRequests: [], requests: [],
    dialogs: [], xss: false, injected: [], counts: {}, texts: {}, text: "", waitForError: null, actionErrors: [],
    navigationError: null, screenshot: null, attributes: {}, canvasPixels: {},
  };
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, ignoreHTTPSErrors: false });
  const page = await context.newPage();
  await page.addInitScript(installInjectionWatch, marker);
  page.on("console", (m) => {
    if (m.type() === "error") {
      const loc = m.location();
      out.consoleErrors.push(loc && loc.url ? `${m.text()} (${loc.url}:${loc.lineNumber})` : m.text());
    }
  });
  page.on("pageerror", (e) => out.pageErrors.push(String(e && e.stack ? e.stack : e)));
  page.on("requestfailed", (r) => {
    const why = r.failure() ? r.failure().errorText : "failed";
    // A fetch the app cancels itself (AbortController: a newer query replaced it) is not a failure.
    (why === "net::ERR_ABORTED" ? out.abortedRequests : out.failedRequests).push({ method: r.method(), url: r.url(), error: why });
  });
  page.on("request", (r) => {
    if (out.requests.length < REQUESTS_LIMIT) out.requests.push({ method: r.method(), url: r.url() });
  });
  page.on("response", (r) => {
    if (r.status() >= 400) out.failedRequests.push({ method: r.request().method(), url: r.url(), status: r.status() });
  });
  page.on("dialog", async (d) => {
    out.dialogs.push({ type: d.type(), message: d.message() });
    await d.dismiss().catch(() => {});
  });

  try {
    const resp = await page.goto(new URL(v.path, spec.base).toString(), { waitUntil: "load", timeout: 15_000 });
    out.status = resp ? resp.status() : null;
    if (v.waitFor) {
      try {
        await page.waitForSelector(v.waitFor, { state: "visible", timeout: WAIT_MS });
      } catch (e) {
        out.waitForError = `${v.waitFor}: ${e.message.split("\n")[0]}`;
      }
    }
    if (v.waitForText && !out.waitForError) {
      try {
        await waitForText(page, v.waitForText);
      } catch (e) {
        out.waitForError = `text ${JSON.stringify(v.waitForText)}: ${e.message.split("\n")[0]}`;
      }
    }
    // Let follow-up requests land (and fail, if they do). A live-tail stream never idles: capped.
    await page.waitForLoadState("networkidle", { timeout: v.waitFor || v.waitForText ? SETTLE_MS : WAIT_MS }).catch(() => {});
    for (const a of v.actions || []) {
      try {
        await runAction(page, a);
      } catch (e) {
        out.actionErrors.push(`${JSON.stringify(a)}: ${e.message.split("\n")[0]}`);
        break;
      }
    }
    // In-app navigation is no page load (networkidle has already fired): a short settle for late answers.
    if ((v.actions || []).length) await page.waitForTimeout(300);
  } catch (e) {
    out.navigationError = e.message.split("\n")[0];
  }

  try {
    out.url = page.url();
    const testids = [...new Set([...(spec.testids || []), ...(v.testids || [])])];
    const state = await page.evaluate(
      ({ marker, testids, textLimit, perTestid }) => {
        const counts = {};
        const texts = {};
        for (const id of testids) {
          const els = [...document.querySelectorAll(`[data-testid="${CSS.escape(id)}"]`)];
          counts[id] = els.length;
          texts[id] = els.slice(0, perTestid).map((e) => (e.innerText || e.textContent || "").slice(0, 2000));
        }
        return {
          xss: window[marker] === undefined ? false : window[marker],
          injected: [...(window.__sightlineInjected || [])],
          counts,
          texts,
          text: (document.body ? document.body.innerText : "").slice(0, textLimit),
        };
      },
      { marker, testids, textLimit: TEXT_LIMIT, perTestid: TESTID_TEXTS_LIMIT },
    );
    Object.assign(out, state);
    if (out.xss === null) out.xss = true; // set, even if to null: something ran
  } catch (e) {
    out.actionErrors.push(`reading the page: ${e.message.split("\n")[0]}`);
  }

  if ((v.attributes || []).length || (v.canvasPixels || []).length) {
    try {
      const extra = await page.evaluate(
        ({ attributes, canvases }) => {
          const attrs = {};
          for (const { selector, names } of attributes) {
            attrs[selector] = [...document.querySelectorAll(selector)].map((el) =>
              Object.fromEntries((names || []).map((n) => [n, el.getAttribute(n)])));
          }
          const pixels = {};
          for (const selector of canvases) {
            pixels[selector] = [...document.querySelectorAll(selector)].map((c) => {
              if (!(c instanceof HTMLCanvasElement) || c.width === 0 || c.height === 0) return 0;
              const g = c.getContext("2d");
              if (!g) return 0;
              const d = g.getImageData(0, 0, c.width, c.height).data;
              let n = 0;
              for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
              return n;
            });
          }
          return { attrs, pixels };
        },
        { attributes: v.attributes || [], canvases: v.canvasPixels || [] },
      );
      out.attributes = extra.attrs;
      out.canvasPixels = extra.pixels;
    } catch (e) {
      out.actionErrors.push(`reading attributes: ${e.message.split("\n")[0]}`);
    }
  }

  if (v.screenshot) {
    try {
      mkdirSync(dirname(v.screenshot), { recursive: true });
      await page.screenshot({ path: v.screenshot, fullPage: !!v.fullPage });
      out.screenshot = v.screenshot;
    } catch (e) {
      out.actionErrors.push(`screenshot: ${e.message.split("\n")[0]}`);
    }
  }
  await context.close();
  return out;
}

const spec = readSpec();
if (!spec || typeof spec.base !== "string" || !Array.isArray(spec.visits)) {
  fail('the spec needs "base" (a URL) and "visits" (a list)');
}

let browser;
try {
  browser = await launchChromium();
} catch (e) {
  fail(`cannot start the browser at ${CHROMIUM} (Debian package chromium; tests/run.sh installs it): ${e.message}`);
}
const results = [];
const version = browser.version();
try {
  for (const v of spec.visits) results.push(await visit(browser, spec, v));
} finally {
  await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify({ browser: version, results }) + "\n");
