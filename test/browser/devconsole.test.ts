import { describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { start } from "../helpers.ts";
import { NO_CHROMIUM, shows, useBrowser } from "./browser.ts";

const newPeople = useBrowser();

async function connect(page: Page, room: string): Promise<void> {
  await page.getByRole("textbox", { name: "Room" }).fill(room);
  await page.getByRole("button", { name: "Connect" }).click();
  await shows(page.getByRole("status"), `Connected to room ${room}.`);
}

async function sendJson(page: Page, text: string): Promise<void> {
  await page.getByRole("radio", { name: "JSON" }).check();
  await page.getByRole("textbox", { name: "Message" }).fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

describe.skipIf(NO_CHROMIUM)("the dev console in Chromium", () => {
  test("two people in a room: frames with their time, JSON pretty-printed, each one's ID, the close code", async () => {
    const t = start(["--devconsole", "--json", "cat"]);
    const people = newPeople();
    const [ada, bob] = await Promise.all([people.open("ada", t.http("/")), people.open("bob", t.http("/"))]);
    await connect(ada, "dev");
    await connect(bob, "dev");
    const adaFrames = ada.getByRole("list", { name: "Frames" }).getByRole("listitem");
    const bobFrames = bob.getByRole("list", { name: "Frames" }).getByRole("listitem");
    // `cat` echoes Bob's join message (which the server wrote to it) to the whole room.
    await shows(adaFrames, /"t": "Join"/);

    expect(await ada.getByLabel("Your connection ID").textContent()).toBe("unknown");
    await sendJson(ada, '{"text":"hello from ada","n":[1,2]}');
    // Pretty-printed, with the stamp the server added, on both pages.
    await shows(bobFrames, /"text": "hello from ada",\n\s+"n": \[\n\s+1,/);
    await shows(adaFrames, /^\d\d:\d\d:\d\d\.\d{3}\s*received/);
    const adaId = await idOf(ada);
    await shows(bobFrames, `"_from": ${adaId}`);
    expect(await bob.getByLabel("Your connection ID").textContent()).toBe("unknown");

    await sendJson(bob, '{"text":"hi ada"}');
    await shows(adaFrames, "hi ada");
    expect(await idOf(bob)).not.toBe(adaId);

    await ada.getByRole("textbox", { name: "Message" }).fill("{not json");
    await ada.getByRole("button", { name: "Send" }).click();
    await shows(ada.getByRole("alert"), "Not valid JSON");

    await ada.getByRole("button", { name: "Disconnect" }).click();
    await shows(ada.getByRole("status"), "Closed with code 1000");
    await shows(adaFrames.last(), "code 1000");
    await shows(bobFrames, /"t": "Leave",\s+"_from": \d+/);
    expect(people.errors).toEqual([]);
  });

  test("a room whose child exits shows the server's close code and reason", async () => {
    const t = start(["--devconsole", "echo", "--", "one line, then exit"]);
    const people = newPeople();
    const page = await people.open("ada", `${t.http("/")}#short`);
    expect(await page.getByRole("textbox", { name: "Room" }).inputValue()).toBe("short");
    await page.getByRole("button", { name: "Connect" }).click();
    await shows(page.getByRole("list", { name: "Frames" }).getByRole("listitem"), "one line, then exit");
    await shows(page.getByRole("status"), /Closed with code 1000: .+/);
    expect(await page.getByRole("button", { name: "Connect" }).isEnabled()).toBe(true);
    expect(people.errors).toEqual([]);
  });
});

/** The connection ID the page shows, once it has learned it. */
async function idOf(page: Page): Promise<number> {
  const id = page.getByLabel("Your connection ID");
  await shows(id, /^\d+$/);
  return Number(await id.textContent());
}
