/**
 * The browser tests' harness: one headless Chromium per test file (Debian's, or CHROMIUM_PATH), a fresh
 * browser context per person on the page, and every console error or uncaught page error recorded so a test
 * can fail on it.
 */
import { afterAll, afterEach, beforeAll } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import pkg from "../../package.json" with { type: "json" };
import { stopAll, WAIT_MS } from "../helpers.ts";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * Without Chromium the browser tests skip (`describe.skipIf`), so `npm test` still runs on a machine without
 * one; `.ci/run` installs it and fails on any skip.
 */
export const NO_CHROMIUM = !existsSync(CHROMIUM);

/** What a flag-less browser does in the background (updates, sync, QUIC probes) is noise for a test. */
const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Where screenshots go: ARTIFACTS_DIR when CI gives one, else a folder under the system's temp dir. */
export function artifactsDir(): string {
  const dir = process.env.ARTIFACTS_DIR ?? join(tmpdir(), "scalesocket-artifacts");
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Launches headless Chromium; Playwright gives each launch a fresh, temporary user-data dir. */
export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30_000 });
}

/** The people of one test, each in a browser context of their own, and what went wrong on their pages. */
export class People {
  private readonly contexts: BrowserContext[] = [];
  /** Console errors and page errors, each prefixed with the person's name. */
  readonly errors: string[] = [];

  constructor(private readonly browser: Browser) {}

  /** A new person (their own cookies and storage) with `url` open. */
  async open(name: string, url: string): Promise<Page> {
    const context = await this.browser.newContext({ viewport: { width: 1000, height: 800 } });
    context.setDefaultTimeout(WAIT_MS);
    this.contexts.push(context);
    const page = await context.newPage();
    page.on("console", (msg) => {
      if (msg.type() === "error") this.errors.push(`${name}: console: ${msg.text()}`);
    });
    page.on("pageerror", (err) => void this.errors.push(`${name}: page error: ${err.message}`));
    await page.goto(url);
    return page;
  }

  /** Closes every person's context; their websockets close with them. */
  async close(): Promise<void> {
    await Promise.all(this.contexts.splice(0).map((c) => c.close()));
  }
}

/**
 * For the top level of a test file: one browser for all its tests, and a function that gives each test its
 * {@link People}, whose pages are closed after the test, before its servers stop.
 */
export function useBrowser(): () => People {
  let browser: Browser | undefined;
  let people: People | undefined;
  beforeAll(async () => {
    if (!NO_CHROMIUM) browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await people?.close();
    people = undefined;
    await stopAll();
  });
  return () => {
    if (browser === undefined) throw new Error(`no browser: Chromium did not start from ${CHROMIUM}`);
    people = new People(browser);
    return people;
  };
}

/** Waits until `locator` shows `text` (a substring, or a pattern), and fails naming both if it never does. */
export async function shows(locator: Locator, text: string | RegExp, ms = WAIT_MS): Promise<void> {
  try {
    await locator.filter({ hasText: text }).first().waitFor({ state: "visible", timeout: ms });
  } catch {
    const seen = (await locator.allInnerTexts().catch(() => [])).join(" | ");
    throw new Error(`expected ${String(locator)} to show ${String(text)}; it shows: ${seen || "(nothing)"}`);
  }
}

/**
 * The command line of `npm run example:NAME` after `bun src/main.ts`, so the test runs what the README tells
 * a user to run. The scripts hold no quotes, so splitting on spaces is exact.
 */
export function exampleArgv(name: string): string[] {
  const scripts: Record<string, string | undefined> = pkg.scripts;
  const script = scripts[`example:${name}`];
  if (script === undefined) throw new Error(`package.json has no example:${name} script`);
  const at = script.lastIndexOf("bun src/main.ts ");
  if (at === -1) throw new Error(`example:${name} does not run bun src/main.ts`);
  return script
    .slice(at + "bun src/main.ts ".length)
    .split(" ")
    .filter((a) => a !== "");
}
