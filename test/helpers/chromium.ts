// Debian's Chromium driven by playwright-core (which never downloads a browser of its own).
// A machine without it fails the browser tests with the command that installs it: a skipped
// browser test would look like a passing one.
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM_PATH = "/usr/bin/chromium";

/**
 * Flags for a sandboxed CI box as root with no network: no Chrome sandbox (root), no GPU,
 * and nothing that phones home (the closed network refuses it, slowly). Playwright gives
 * each launch a fresh, empty profile directory of its own and removes it on close.
 */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing, so the browser tests cannot run: install Debian's chromium with \`bash scripts/ensure-system-deps.sh\` (as root)`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: FLAGS, timeout: 30_000 });
}
