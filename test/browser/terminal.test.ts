import { describe, test } from "bun:test";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { vendorXterm } from "../../examples/terminal/vendor.ts";
import { FLAGS } from "../../src/cli/flags.ts";
import { start } from "../helpers.ts";
import { artifactsDir, exampleArgv, NO_CHROMIUM, shows, useBrowser } from "./browser.ts";

const newPeople = useBrowser();
// The example runs under --pty, which comes with the PTY transport; until then this test has nothing to run.
const NO_PTY = !("pty" in FLAGS);

/** What the terminal shows: xterm.js draws its rows as text in the page. */
const screen = (page: Page) => page.locator(".xterm-rows");

async function press(page: Page, key: string): Promise<void> {
  await page.locator(".xterm").click();
  await page.keyboard.press(key);
}

describe.skipIf(NO_CHROMIUM || NO_PTY)("examples/terminal in Chromium", () => {
  test("two people share one full-screen program in xterm.js: both see it, both type into it", async () => {
    vendorXterm();
    const t = start(exampleArgv("terminal"));
    const people = newPeople();
    const url = `${t.http("/")}#browser-life`;
    const [ada, bob] = await Promise.all([people.open("ada", url), people.open("bob", url)]);
    for (const page of [ada, bob]) {
      await shows(page.getByRole("status"), "Connected to room browser-life.");
      await shows(screen(page), /Game of Life · generation \d+ · \d+ alive · running/);
      await shows(screen(page), /space pause · r random/);
    }

    await press(ada, " ");
    for (const page of [ada, bob]) await shows(screen(page), /alive · paused/);
    await press(bob, "c");
    for (const page of [ada, bob]) await shows(screen(page), /generation 0 · 0 alive · paused/);
    await press(bob, "Enter");
    await press(ada, "ArrowRight");
    await press(ada, "x");
    for (const page of [ada, bob]) await shows(screen(page), /generation 0 · 2 alive · paused/);

    await ada.screenshot({ path: join(artifactsDir(), "terminal.png") });
    if (people.errors.length > 0) throw new Error(people.errors.join("\n"));
  });
});
