import { afterEach, describe, expect, test } from "bun:test";
import { start, stopAll, upgradeStatus } from "../helpers.ts";

afterEach(stopAll);

describe("--devconsole", () => {
  test("serves its page at / with a policy that allows nothing from elsewhere", async () => {
    const t = start(["--devconsole", "--json", "cat"]);
    const res = await fetch(t.http("/"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    const page = await res.text();
    expect(page).toContain("<title>scalesocket dev console</title>");
    // No build step and no CDN: nothing in the page is fetched from anywhere else.
    expect(page).not.toMatch(/\b(src|href)="(https?:)?\/\//);

    const head = await fetch(t.http("/"), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    expect((await fetch(t.http("/"), { method: "POST" })).status).toBe(405);
  });

  test("only / is the page: other paths are 404 and a websocket to / is still refused", async () => {
    const t = start(["--devconsole", "cat"]);
    expect((await fetch(t.http("/lobby"))).status).toBe(404);
    expect((await fetch(t.http("/index.html"))).status).toBe(404);
    expect(await upgradeStatus(t.url(""))).toBe(400);
  });

  test("without the flag / is 404", async () => {
    const t = start(["cat"]);
    expect((await fetch(t.http("/"))).status).toBe(404);
  });
});
