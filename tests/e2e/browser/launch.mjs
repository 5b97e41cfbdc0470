// Starts Debian's chromium (or $SIGHTLINE_CHROMIUM) through the playwright-core installed next to this file,
// headless and with the same flags, for the browser tests (run.mjs) and the UI benchmarks (bench/ui/*.mjs).
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.SIGHTLINE_CHROMIUM || "/usr/bin/chromium";

/** A headless browser; throws (with playwright's reason) when it cannot start. */
export function launchChromium() {
  const args = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"];
  if (typeof process.getuid === "function" && process.getuid() === 0) args.push("--no-sandbox");
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: 60_000 });
}
