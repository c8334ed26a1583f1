import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { metrics, sample, start, stopAll, TestClient, upgradeStatus, within } from "../helpers.ts";

afterEach(stopAll);

describe("HTTP endpoints", () => {
  test("/health answers ok", async () => {
    const t = start(["cat"]);
    const res = await fetch(t.http("/health"));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  test("reserved room names, an empty room and bad encoding are refused with 400", async () => {
    const t = start(["--metrics", "cat"]);
    for (const name of ["api", "metrics", "health", "static", "upload", "robots.txt", "favicon.ico"]) {
      expect(await upgradeStatus(t.url(name))).toBe(400);
    }
    expect(await upgradeStatus(t.url("api/rooms"))).toBe(400);
    expect(await upgradeStatus(t.url(""))).toBe(400);
    expect(await upgradeStatus(t.url("bad%zz"))).toBe(400);
    expect(sample(await metrics(t), "scalesocket_children_spawned_total")).toBe(0);
  });

  test("the quick start's room answers a websocket with the child's output; its curl example key is refused (400)", async () => {
    const t = start(["echo", "--", '{"message": "hello world"}']);
    const client = await TestClient.open(t.url("exampleroom"));
    expect(await client.next()).toBe('{"message": "hello world"}');
    // The upstream example key decodes to 13 bytes; RFC 6455 requires 16, and Bun refuses it.
    const res = await fetch(t.http("/exampleroom"), {
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Key": "SGVsbG8sIHdvcmxkIQ==",
        "Sec-WebSocket-Version": "13",
      },
    });
    expect(res.status).toBe(400);
  });

  test("a plain GET on a room is 404 without --staticdir", async () => {
    const t = start(["cat"]);
    expect((await fetch(t.http("/lobby"))).status).toBe(404);
    expect((await fetch(t.http("/"))).status).toBe(404);
  });

  test("--staticdir serves files, index.html, HEAD, and nothing outside the directory", async () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), "ss-static-")));
    const outside = realpathSync(mkdtempSync(join(tmpdir(), "ss-outside-")));
    writeFileSync(join(root, "index.html"), "<h1>hi</h1>");
    writeFileSync(join(root, "app.js"), "console.log(1)");
    writeFileSync(join(outside, "secret.txt"), "secret");
    symlinkSync(join(outside, "secret.txt"), join(root, "leak.txt"));
    const t = start(["--staticdir", root, "cat"]);

    const index = await fetch(t.http("/"));
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toStartWith("text/html");
    expect(await index.text()).toBe("<h1>hi</h1>");
    const js = await fetch(t.http("/app.js"));
    expect(js.headers.get("content-type")).toContain("javascript");
    const head = await fetch(t.http("/app.js"), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("14");
    expect(await head.text()).toBe("");
    expect((await fetch(t.http("/missing.txt"))).status).toBe(404);
    expect((await fetch(t.http("/leak.txt"))).status).toBe(404);
    for (const path of [
      "/%2e%2e/secret.txt",
      "/..%2fsecret.txt",
      "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
      "/a%5c..%5csecret",
    ]) {
      expect((await fetch(t.http(path))).status).toBe(404);
    }
    expect((await fetch(t.http("/app.js"), { method: "POST" })).status).toBe(405);
    // A websocket on the same path is still a room.
    const client = await TestClient.open(t.url("app.js"));
    client.send("x");
    expect(await client.next()).toBe("x");
  });

  test("--oneshot refuses a second client with 503 while the first is served", async () => {
    const t = start(["--oneshot", "cat"]);
    const a = await TestClient.open(t.url("r"));
    expect(await upgradeStatus(t.url("r"))).toBe(503);
    expect(await upgradeStatus(t.url("other"))).toBe(503);
    a.send("only me");
    expect(await a.next()).toBe("only me");
    a.close();
    await within(t.server.finished, "the --oneshot server to finish");
  });

  test("--addr binds for real: [::1] on a chosen port, and port 0 on a free one", async () => {
    // A free IPv6 loopback port, learnt by binding it and letting it go.
    const probe = Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    for (const addr of [`[::1]:${port}`, "[::1]:0", "127.0.0.1:0"]) {
      const t = start(["--addr", addr, "cat"]);
      if (addr.endsWith(`:${port}`)) expect(t.server.port).toBe(port);
      else expect(t.server.port).toBeGreaterThan(0);
      const c = await TestClient.open(t.url("r"));
      expect(t.url("r")).toStartWith(addr.startsWith("[") ? "ws://[::1]:" : "ws://127.0.0.1:");
      c.send(`via ${addr}`);
      expect(await c.next()).toBe(`via ${addr}`);
      expect(await (await fetch(t.http("/health"))).json()).toEqual({ status: "ok" });
      await stopAll();
    }
  });
});
