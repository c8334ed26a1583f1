import { describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { start } from "../helpers.ts";
import { exampleArgv, NO_CHROMIUM, shows, useBrowser } from "./browser.ts";

const newPeople = useBrowser();

/** Plays a cell and waits until both players' boards show it, so moves reach the game in turn. */
async function play(player: Page, other: Page, cell: number, mark: string): Promise<void> {
  await player.getByRole("button", { name: `Cell ${cell}, empty` }).click();
  for (const page of [player, other]) {
    await page.getByRole("button", { name: `Cell ${cell}, ${mark}` }).waitFor();
  }
}

describe.skipIf(NO_CHROMIUM)("examples/tictactoe in Chromium", () => {
  test("the lobby lists an open game, two people play it to the end, errors stay private", async () => {
    const t = start(exampleArgv("tictactoe"));
    const people = newPeople();
    const ada = await people.open("ada", t.http("/"));
    await shows(ada.getByText(/No game waits/), "No game waits for a player");
    await ada.getByRole("button", { name: "New game" }).click();
    await ada.waitForURL(/game\.html#game-/);
    const game = decodeURIComponent(new URL(ada.url()).hash.slice(1));
    await shows(ada.getByRole("heading"), `Game ${game}`);
    await shows(ada.getByRole("status"), "You are X. Waiting for a second player.");

    const bob = await people.open("bob", t.http("/"));
    await bob.getByRole("list", { name: "Open games" }).getByRole("link", { name: game }).click();
    await shows(bob.getByRole("status"), "You are O. X to play.");
    await shows(ada.getByRole("status"), "You are X. Your turn.");

    // An error goes to the one who made it (`_to`), not to the room.
    await bob.getByRole("button", { name: "Cell 5, empty" }).click();
    await shows(bob.getByRole("alert"), "Not played: not your turn.");
    expect(await ada.getByRole("alert").textContent()).toBe("");

    await play(ada, bob, 1, "X");
    await play(bob, ada, 4, "O");
    await play(ada, bob, 2, "X");
    await play(bob, ada, 5, "O");
    await play(ada, bob, 3, "X");
    await shows(ada.getByRole("status"), "You are X. You win!");
    await shows(bob.getByRole("status"), "You are O. X wins.");

    // The room's metadata (`_meta`) now says the game is full: the lobby lists it as in progress.
    const cy = await people.open("cy", t.http("/"));
    await shows(cy.getByRole("list", { name: "Games in progress" }), `${game} — X wins (2 people)`);
    expect(await cy.getByRole("list", { name: "Open games" }).getByRole("link").count()).toBe(0);

    await bob.getByRole("button", { name: "Play again" }).click();
    await shows(ada.getByRole("status"), "You are X. Your turn.");
    expect(people.errors).toEqual([]);
  });
});
