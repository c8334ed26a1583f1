import { describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { start } from "../helpers.ts";
import { exampleArgv, NO_CHROMIUM, shows, useBrowser } from "./browser.ts";

const newPeople = useBrowser();
const CELL = 16;
const RED = [224, 48, 48];
const BLUE = [48, 96, 208];

/** The colour a person sees in the middle of cell (x, y) of the board. */
function colourAt(page: Page, x: number, y: number): Promise<number[]> {
  const [px, py] = [x * CELL + CELL / 2, y * CELL + CELL / 2];
  // A string, evaluated in the page: the tests are compiled without the DOM's types.
  return page.evaluate<number[]>(
    `Array.from(document.querySelector("canvas").getContext("2d").getImageData(${px}, ${py}, 1, 1).data.slice(0, 3))`,
  );
}

describe.skipIf(NO_CHROMIUM)("examples/board in Chromium", () => {
  test("two people draw on one board, and a late joiner sees the whole picture", async () => {
    const t = start(exampleArgv("board"));
    const people = newPeople();
    const url = `${t.http("/")}#browser-board`;
    const [ada, bob] = await Promise.all([people.open("ada", url), people.open("bob", url)]);
    for (const page of [ada, bob]) await shows(page.getByRole("status"), "2 people here · 0 cells painted");

    await ada.getByRole("radio", { name: "Red" }).check();
    const board = ada.getByRole("img", { name: "Drawing board" });
    await board.click({ position: { x: 2 * CELL + 8, y: 3 * CELL + 8 } });
    await shows(bob.getByRole("status"), "1 cell painted");
    expect(await colourAt(bob, 2, 3)).toEqual(RED);
    // Ada's pointer shows on Bob's board, named by her connection ID.
    await shows(bob.getByText(/^client \d+$/), /client \d+/);

    // Two strokes across the board: more paints than the cache holds (64), so the late joiner's picture
    // comes from the last whole board the backend sent plus the paints after it.
    await ada.getByRole("radio", { name: "Blue" }).check();
    const box = await board.boundingBox();
    if (box === null) throw new Error("the board is not on the page");
    for (const row of [10, 11]) {
      const y = box.y + row * CELL + 8;
      await ada.mouse.move(box.x + 4, y);
      await ada.mouse.down();
      await ada.mouse.move(box.x + 40 * CELL - 4, y, { steps: 60 });
      await ada.mouse.up();
    }
    await shows(bob.getByRole("status"), "81 cells painted");

    const cy = await people.open("cy", url);
    await shows(cy.getByRole("status"), "3 people here · 81 cells painted");
    expect(await colourAt(cy, 2, 3)).toEqual(RED);
    expect(await colourAt(cy, 0, 10)).toEqual(BLUE);
    expect(await colourAt(cy, 39, 11)).toEqual(BLUE);
    expect(await colourAt(cy, 5, 5)).toEqual([255, 255, 255]);

    // The backend's `_meta` lines are the room's metadata in the API.
    const meta = await (await fetch(t.http("/api/browser-board/metadata"))).json();
    expect(meta).toEqual({ people: 3, painted: 81 });

    await cy.getByRole("button", { name: "Clear the board" }).click();
    await shows(ada.getByRole("status"), "3 people here · 0 cells painted");
    expect(await colourAt(ada, 2, 3)).toEqual([255, 255, 255]);
    expect(people.errors).toEqual([]);
  });
});
