import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import { type JWTPayload, SignJWT } from "jose";
import {
  start,
  stopAll,
  TestClient,
  type TestServer,
  upgradeAnswer,
  upgradeRequest,
  within,
} from "../helpers.ts";

afterEach(stopAll);

const SECRET = "0123456789abcdef0123456789abcdef";
const HMAC_KEY = new TextEncoder().encode(SECRET);
const DIR = mkdtempSync(join(tmpdir(), "scalesocket-access-"));
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

/** A token for `claims`, valid for an hour unless the claims say otherwise. */
function sign(
  claims: JWTPayload,
  key: Parameters<SignJWT["sign"]>[0] = HMAC_KEY,
  alg = "HS256",
  kid?: string,
) {
  return new SignJWT({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims })
    .setProtectedHeader({ alg, ...(kid === undefined ? {} : { kid }) })
    .sign(key);
}

/** What printenv, as the room's child, printed for a client admitted with `init`. */
async function childEnv(url: string, init?: Bun.WebSocketOptions): Promise<Record<string, string>> {
  const client = await TestClient.open(url, init);
  await client.waitClosed();
  const env: Record<string, string> = {};
  for (const line of client.received.map(String)) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  expect(env.ROOM).toBeDefined();
  return env;
}

describe("--origin", () => {
  test("a foreign Origin is refused with 403 before the upgrade; none, listed and same pass", async () => {
    const t = start(["--origin", "https://good.example,https://*.apps.example,same", "cat"]);
    const port = t.server.port;
    expect(await upgradeAnswer(t.url("r"), { Origin: "http://evil.example" })).toEqual({
      status: 403,
      body: "origin not allowed",
    });
    expect((await upgradeAnswer(t.url("r"), { Origin: "null" })).status).toBe(403);
    expect((await upgradeAnswer(t.url("r"), { Origin: "https://good.example.evil.example" })).status).toBe(
      403,
    );
    expect((await upgradeAnswer(t.url("r"), { Origin: `http://localhost:${port}` })).status).toBe(403);
    expect((await upgradeAnswer(t.url("r"))).status).toBe(101);
    expect((await upgradeAnswer(t.url("r"), { Origin: "https://good.example" })).status).toBe(101);
    expect((await upgradeAnswer(t.url("r"), { Origin: "https://a.apps.example" })).status).toBe(101);
    expect((await upgradeAnswer(t.url("r"), { Origin: `http://127.0.0.1:${port}` })).status).toBe(101);
  });

  test("a browser-like client from a foreign origin never opens, nor spawns a child", async () => {
    const t = start(["--origin", "https://good.example", "cat"]);
    const evil = new TestClient(t.url("victim"), { headers: { Origin: "https://evil.example" } });
    await expect(within(evil.opened, "the refused open")).rejects.toThrow("websocket error");
    expect(t.server.rooms.size).toBe(0);
    const good = await TestClient.open(t.url("victim"), { headers: { Origin: "https://good.example" } });
    good.send("hi");
    expect(await good.next()).toBe("hi");
  });
});

describe("--jwtsecret", () => {
  let t: TestServer;
  const serve = (argv: string[] = ["printenv"]) => {
    t = start(["--jwtsecret", SECRET, ...argv]);
    return t;
  };

  test("a good token admits; its sub is REMOTE_USER; the token reaches neither the child nor the log", async () => {
    serve();
    const token = await sign({ sub: "ann" });
    const env = await childEnv(`${t.url("r")}?a=1&token=${token}&b=%20x`);
    expect(env.REMOTE_USER).toBe("ann");
    expect(env.QUERY_STRING).toBe("a=1&b=%20x");
    for (const value of Object.values(env)) expect(value).not.toContain(token);
    expect(t.logs.join("\n")).not.toContain(token);
  });

  test("a bearer header admits too, and the child gets no HTTP_AUTHORIZATION", async () => {
    serve();
    const token = await sign({ sub: "bob" });
    const env = await childEnv(t.url("r"), { headers: { Authorization: `Bearer ${token}`, "X-Other": "1" } });
    expect(env.REMOTE_USER).toBe("bob");
    expect(env.HTTP_X_OTHER).toBe("1");
    expect(env.HTTP_AUTHORIZATION).toBeUndefined();
  });

  test("a token without sub admits with no user", async () => {
    serve();
    const env = await childEnv(`${t.url("r")}?token=${await sign({})}`);
    expect(env.REMOTE_USER).toBeUndefined();
  });

  test("the room claim: a name, a glob or a list", async () => {
    serve(["cat"]);
    const ok = async (room: string, claim: string | string[]) =>
      (await upgradeAnswer(`${t.url(room)}?token=${await sign({ room: claim })}`)).status;
    expect(await ok("game-1", "game-1")).toBe(101);
    expect(await ok("game-2", "game-*")).toBe(101);
    expect(await ok("b", ["a", "b"])).toBe(101);
    expect(await upgradeAnswer(`${t.url("lobby")}?token=${await sign({ room: "game-*" })}`)).toEqual({
      status: 401,
      body: "room not allowed by the token",
    });
  });

  test("refusals are 401 with a one-line reason", async () => {
    serve(["cat"]);
    const now = Math.floor(Date.now() / 1000);
    const other = new TextEncoder().encode("another secret, 32 bytes or more!");
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    // Crafted by hand: no library signs with `none`.
    const none = `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "eve", exp: now + 3600 })}.`;
    const noExp = await new SignJWT({ sub: "eve" }).setProtectedHeader({ alg: "HS256" }).sign(HMAC_KEY);
    const cases: [string, string][] = [
      ["", "token missing"],
      [await sign({ exp: now - 60 }), "token expired"],
      [await sign({ nbf: now + 3600 }), "token not valid yet"],
      [noExp, "token has no exp claim"],
      [await sign({}, other), "bad signature"],
      [none, "token algorithm not allowed"],
      ["not.a.token", "malformed token"],
    ];
    for (const [token, reason] of cases) {
      const query = token === "" ? "" : `?token=${token}`;
      expect({ token, ...(await upgradeAnswer(`${t.url("r")}${query}`)) }).toEqual({
        token,
        status: 401,
        body: reason,
      });
    }
    expect(t.server.rooms.size).toBe(0);
    expect(t.server.counters.refused).toBe(cases.length);
  });

  test("#USER in the join and leave messages, for every joiner", async () => {
    serve(["--joinmsg", "join #USER #ID", "--leavemsg", "leave #USER", "cat"]);
    const a = await TestClient.open(`${t.url("r")}?token=${await sign({ sub: "ann" })}`);
    expect(await a.next()).toBe("join ann 1");
    const b = await TestClient.open(`${t.url("r")}?token=${await sign({ sub: "b b" })}`);
    expect(await a.next()).toBe("join b%20b 2");
    b.close();
    expect(await a.next()).toBe("leave b%20b");
  });

  test("--json with an auth flag: the default join message carries _user", async () => {
    serve(["--json", "cat"]);
    const a = await TestClient.open(`${t.url("r")}?token=${await sign({ sub: "ann" })}`);
    expect(JSON.parse(await a.next())).toEqual({ t: "Join", _from: 1, _user: "ann" });
  });
});

describe("--jwtkey", () => {
  test("a PEM public key: its algorithm only; an HMAC token keyed with the PEM text is refused", async () => {
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = ec.publicKey.export({ type: "spki", format: "pem" }) as string;
    const file = join(DIR, "ec.pem");
    writeFileSync(file, pem);
    const t = start(["--jwtkey", file, "cat"]);
    expect(
      (await upgradeAnswer(`${t.url("r")}?token=${await sign({}, ec.privateKey, "ES256")}`)).status,
    ).toBe(101);
    // The classic confusion: the public key (which anyone has) used as an HMAC secret.
    const forged = await sign({}, new TextEncoder().encode(pem), "HS256");
    expect(await upgradeAnswer(`${t.url("r")}?token=${forged}`)).toEqual({
      status: 401,
      body: "token algorithm not allowed",
    });
    const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" });
    expect(
      (await upgradeAnswer(`${t.url("r")}?token=${await sign({}, stranger.privateKey, "ES256")}`)).body,
    ).toBe("bad signature");
  });

  test("a JWKS: the key named by kid", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const ed = generateKeyPairSync("ed25519");
    const jwks = {
      keys: [
        { ...rsa.publicKey.export({ format: "jwk" }), kid: "rsa-1", alg: "RS256", use: "sig" },
        { ...ed.publicKey.export({ format: "jwk" }), kid: "ed-1" },
      ],
    };
    const file = join(DIR, "jwks.json");
    writeFileSync(file, JSON.stringify(jwks));
    const t = start(["--jwtkey", file, "printenv"]);
    const env = await childEnv(
      `${t.url("r")}?token=${await sign({ sub: "rs" }, rsa.privateKey, "RS256", "rsa-1")}`,
    );
    expect(env.REMOTE_USER).toBe("rs");
    expect(
      (await upgradeAnswer(`${t.url("r")}?token=${await sign({}, ed.privateKey, "EdDSA", "ed-1")}`)).status,
    ).toBe(101);
    expect(
      (await upgradeAnswer(`${t.url("r")}?token=${await sign({}, rsa.privateKey, "RS256", "nope")}`)).body,
    ).toBe("no key matches the token");
  });
});

describe("--authurl", () => {
  let auth: Server<undefined>;
  const seen: Headers[] = [];
  beforeAll(() => {
    auth = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/slow") return new Promise<Response>(() => {});
        seen.push(req.headers);
        if (req.headers.get("cookie") === "session=ok") {
          return new Response("ok", { headers: { "X-Scalesocket-User": "carol" } });
        }
        if (req.headers.get("cookie") === "session=banned") return new Response("banned\n", { status: 403 });
        return new Response(null, { status: 302, headers: { Location: "https://login.example/" } });
      },
    });
  });
  afterAll(() => auth.stop(true));

  test("a 2xx admits with its user; the service sees the credentials, the room and the client's address", async () => {
    const t = start(["--authurl", `http://127.0.0.1:${auth.port}/check`, "printenv"]);
    seen.length = 0;
    const env = await childEnv(t.url("a%20room"), {
      headers: {
        Cookie: "session=ok",
        Authorization: "Basic YTpi",
        Origin: "https://app.example",
        "User-Agent": "test-agent",
        "X-Forwarded-For": "198.51.100.1",
      },
    });
    expect(env.REMOTE_USER).toBe("carol");
    expect(env.HTTP_AUTHORIZATION).toBeUndefined();
    const h = seen[0] as Headers;
    expect(h.get("cookie")).toBe("session=ok");
    expect(h.get("authorization")).toBe("Basic YTpi");
    expect(h.get("origin")).toBe("https://app.example");
    expect(h.get("user-agent")).toBe("test-agent");
    expect(h.get("x-forwarded-for")).toBe("198.51.100.1, 127.0.0.1");
    expect(h.get("x-scalesocket-room")).toBe("a room");
  });

  test("any other answer goes back to the client before the upgrade", async () => {
    const t = start(["--authurl", `http://127.0.0.1:${auth.port}/check`, "cat"]);
    const res = await upgradeRequest(t.http("/r"));
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://login.example/");
    expect(await upgradeAnswer(t.url("r"), { Cookie: "session=banned" })).toEqual({
      status: 403,
      body: "banned",
    });
    expect(t.server.rooms.size).toBe(0);
  });

  test("no answer in time, or no service, is 503", async () => {
    const slow = start(["--authurl", `http://127.0.0.1:${auth.port}/slow`, "cat"], { authTimeoutMs: 200 });
    expect(await upgradeAnswer(slow.url("r"))).toEqual({
      status: 503,
      body: "auth service did not answer in time",
    });
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const deadPort = probe.port;
    probe.stop(true);
    const gone = start(["--authurl", `http://127.0.0.1:${deadPort}/`, "cat"]);
    expect(await upgradeAnswer(gone.url("r"))).toEqual({ status: 503, body: "auth service unreachable" });
  });
});
