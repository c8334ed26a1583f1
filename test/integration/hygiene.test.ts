import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  metrics,
  sample,
  start,
  stopAll,
  TestClient,
  upgradeAnswer,
  upgradeStatus,
  within,
} from "../helpers.ts";

afterEach(stopAll);

/** Sends `request` on a raw socket and returns everything the server answers until it closes or goes quiet. */
async function rawRequest(port: number, request: string): Promise<string> {
  const sock = net.connect(port, "127.0.0.1");
  let text = "";
  sock.on("data", (d: Buffer) => {
    text += d.toString("latin1");
  });
  const answered = new Promise<void>((resolve) => {
    sock.on("data", () => {
      if (text.includes("\r\n\r\n")) resolve();
    });
    sock.once("close", () => resolve());
  });
  sock.write(request);
  await within(answered, "an answer on a raw socket");
  sock.destroy();
  return text;
}

describe("room names", () => {
  const bad: [string, string, string][] = [
    ["an encoded path", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "invalid room name: '/' and '\\' are not allowed"],
    ["CR LF", "x%0d%0aFORGED", "invalid room name: control characters are not allowed"],
    ["NUL", "%00", "invalid room name: control characters are not allowed"],
    ["an escape sequence", "%1b%5b2J", "invalid room name: control characters are not allowed"],
    // URL parsing removes dot segments, encoded or not, before the name is looked at (roomNameProblem refuses
    // them too, should a request ever get past it).
    ["an encoded dot", "%2e", "no room: connect to /<room>"],
    ["two encoded dots", "%2e%2e", "no room: connect to /<room>"],
    ["a backslash", "a%5cb", "invalid room name: '/' and '\\' are not allowed"],
    ["14 KB", "x".repeat(14 * 1024), "invalid room name: longer than 255 bytes"],
    ["256 bytes", "x".repeat(256), "invalid room name: longer than 255 bytes"],
  ];
  test.each(bad)(
    "%s is refused with 400 and the reason, before any child runs",
    async (_n, segment, reason) => {
      const t = start(["--metrics", "cat"]);
      expect(await upgradeAnswer(t.http(`/${segment}`))).toEqual({ status: 400, body: reason });
      const text = await metrics(t);
      expect(sample(text, 'scalesocket_refusals_total{reason="bad_room_name"}')).toBe(1);
      expect(sample(text, "scalesocket_children_spawned_total")).toBe(0);
    },
  );

  test("255 bytes is a room; names with dots that are not . or .. are rooms", async () => {
    const t = start(["cat"]);
    for (const name of [`${"é".repeat(127)}a`, "...", ".hidden", "a.b"]) {
      expect({ name, status: await upgradeStatus(t.url(encodeURIComponent(name))) }).toEqual({
        name,
        status: 101,
      });
    }
  });
});

describe("text logs", () => {
  test("a close reason the client chose cannot forge a log line", async () => {
    const t = start(["cat"]);
    const c = await TestClient.open(t.url("r"));
    c.ws.close(4000, "bye\r\n2024-01-01T00:00:00.000Z INFO  FORGED");
    await c.waitClosed();
    await within(
      (async () => {
        while (!t.logs.some((l) => l.includes("left room r"))) await Bun.sleep(5);
      })(),
      "the leave to be logged",
    );
    const log = t.logs.join("");
    expect(log).toContain("(4000 bye\\r\\n2024-01-01T00:00:00.000Z INFO  FORGED)");
    expect(log.split("\n").some((l) => l.startsWith("2024-01-01"))).toBe(false);
  });
});

describe("HTTP", () => {
  test("a GET without Host is 400, not 500, and logs no error", async () => {
    const t = start(["cat"]);
    const answer = await rawRequest(t.server.port, "GET /health HTTP/1.0\r\n\r\n");
    expect(answer).toStartWith("HTTP/1.1 400");
    expect(t.logs.join("")).not.toContain("ERROR");
    expect((await fetch(t.http("/health"))).status).toBe(200);
  });

  test("/api answers GET and HEAD only: 405 with Allow otherwise", async () => {
    const t = start(["--api", "cat"]);
    for (const method of ["DELETE", "POST", "PUT", "PATCH"]) {
      const res = await fetch(t.http("/api/rooms"), { method });
      expect({ method, status: res.status, allow: res.headers.get("allow") }).toEqual({
        method,
        status: 405,
        allow: "GET, HEAD",
      });
    }
    expect((await fetch(t.http("/api/rooms"))).status).toBe(200);
    expect((await fetch(t.http("/api/rooms"), { method: "HEAD" })).status).toBe(200);
  });

  test("static files carry X-Content-Type-Options: nosniff, for GET and HEAD", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ss-static-"));
    writeFileSync(join(dir, "notes.txt"), "<script>alert(1)</script>");
    const t = start(["--staticdir", dir, "cat"]);
    for (const method of ["GET", "HEAD"]) {
      const res = await fetch(t.http("/notes.txt"), { method });
      expect({ method, status: res.status, nosniff: res.headers.get("x-content-type-options") }).toEqual({
        method,
        status: 200,
        nosniff: "nosniff",
      });
    }
  });
});
