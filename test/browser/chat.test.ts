import { describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { start } from "../helpers.ts";
import { exampleArgv, NO_CHROMIUM, shows, useBrowser } from "./browser.ts";

const newPeople = useBrowser();

async function say(page: Page, text: string): Promise<void> {
  await page.getByRole("textbox", { name: "Message" }).fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

describe.skipIf(NO_CHROMIUM)("examples/chat in Chromium", () => {
  test("two people talk, and a late joiner sees the recent messages but no old joins", async () => {
    const t = start(exampleArgv("chat"));
    const people = newPeople();
    const url = `${t.http("/")}#browser-chat`;
    const [ada, bob] = await Promise.all([people.open("ada", url), people.open("bob", url)]);
    for (const page of [ada, bob]) await shows(page.getByRole("status"), "connected to room browser-chat");

    await say(ada, "hello from ada");
    await shows(bob.getByRole("log", { name: "Messages" }), /client \d+: hello from ada/);
    await shows(ada.getByRole("log", { name: "Messages" }), /you \(\d+\): hello from ada/);
    await say(bob, "hi ada");
    await shows(ada.getByRole("log", { name: "Messages" }), /client \d+: hi ada/);

    const cy = await people.open("cy", url);
    const log = cy.getByRole("log", { name: "Messages" });
    await shows(log, /client \d+: hello from ada/);
    await shows(log, /client \d+: hi ada/);
    // The cache holds chat lines only: Cy sees her own join live (before the page knows her ID), but not
    // Ada's and Bob's from before.
    await shows(log, /client \d+ joined/);
    expect(await log.getByText(/joined/).count()).toBe(1);
    await shows(ada.getByRole("log", { name: "Messages" }), /client \d+ joined/);
    expect(people.errors).toEqual([]);
  });
});
