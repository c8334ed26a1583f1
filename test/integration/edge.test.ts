import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killSpawned, spawnServer, start, stopAll, TestClient, upgradeStatus, within } from "../helpers.ts";

afterEach(async () => {
  await stopAll();
  await killSpawned();
});

const ROOT = new URL("../../", import.meta.url).pathname;
const DIR = mkdtempSync(join(tmpdir(), "scalesocket-edge-"));
afterAll(() => rmSync(DIR, { recursive: true, force: true }));
const SECRET = "0123456789abcdef0123456789abcdef";

/** The environment printenv printed, by name. */
function envOf(lines: readonly (string | Uint8Array)[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of lines.map(String)) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

describe("TLS", () => {
  // A self-signed certificate for 127.0.0.1 and localhost, made for this run.
  const cert = join(DIR, "cert.pem");
  const key = join(DIR, "key.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"],
      ...["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
      ...["-keyout", key, "-out", cert],
    ],
    { stdio: "ignore" },
  );
  const ca = readFileSync(cert, "utf8");

  test("wss and https on --addr, verified against the certificate", async () => {
    const t = start(["--tlscert", cert, "--tlskey", key, "cat"]);
    const port = t.server.port;
    const client = await TestClient.open(`wss://127.0.0.1:${port}/r`, { tls: { ca } });
    client.send("over tls");
    expect(await client.next()).toBe("over tls");
    const health = await within(fetch(`https://127.0.0.1:${port}/health`, { tls: { ca } }), "https /health");
    expect(health.status).toBe(200);
    // Plain text to a TLS port is no websocket.
    await expect(within(new TestClient(`ws://127.0.0.1:${port}/r`).opened, "plain open")).rejects.toThrow();
  });

  test("a bad certificate file stops the start with exit 2, naming the file", async () => {
    const proc = Bun.spawn(
      [process.execPath, join(ROOT, "src/main.ts"), "--tlscert", key, "--tlskey", key, "cat"],
      { stdout: "ignore", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } },
    );
    expect(await within(proc.exited, "exit")).toBe(2);
    expect(await new Response(proc.stderr).text()).toContain(`--tlscert '${key}' is not a PEM certificate`);
  });
});

describe("--trustproxy", () => {
  test("behind a trusted proxy the client address comes from X-Forwarded-For: child, templates, log", async () => {
    const t = start(["--trustproxy", "127.0.0.1", "--joinmsg", "hello #REMOTE_ADDR", "cat"]);
    const headers = { "X-Forwarded-For": "6.6.6.6, 203.0.113.7" };
    const client = await TestClient.open(t.url("r"), { headers });
    expect(await client.next()).toBe("hello 203.0.113.7:0");
    expect(t.logs.some((l) => l.includes("joined room r from 203.0.113.7:0"))).toBe(true);
    const printenv = start(["--trustproxy", "127.0.0.0/8", "printenv"]);
    const env = envOf(
      await (async () => {
        const c = await TestClient.open(printenv.url("r"), {
          headers: { Forwarded: 'for="[2001:db8::7]:4711";proto=https' },
        });
        await c.waitClosed();
        return c.received;
      })(),
    );
    expect(env.REMOTE_ADDR).toBe("[2001:db8::7]:4711");
    expect(env.REMOTE_PORT).toBe("4711");
  });

  test("without it, or from an untrusted peer, the header is ignored", async () => {
    for (const argv of [[], ["--trustproxy", "10.0.0.0/8"]]) {
      const t = start([...argv, "--joinmsg", "hello #REMOTE_ADDR", "cat"]);
      const client = await TestClient.open(t.url("r"), { headers: { "X-Forwarded-For": "6.6.6.6" } });
      expect(await client.next()).toMatch(/^hello 127\.0\.0\.1:\d+$/);
    }
  });
});

describe("/api CORS", () => {
  test("follows --origin when it is set", async () => {
    const cors = async (t: ReturnType<typeof start>, origin: string) =>
      (await fetch(t.http("/api/rooms"), { headers: { Origin: origin } })).headers.get(
        "access-control-allow-origin",
      );
    const open = start(["--api", "cat"]);
    expect(await cors(open, "https://any.example")).toBe("*");
    const closed = start(["--api", "--origin", "https://good.example", "cat"]);
    expect(await cors(closed, "https://good.example")).toBe("https://good.example");
    expect(await cors(closed, "https://evil.example")).toBeNull();
    const res = await fetch(closed.http("/api/rooms"));
    expect(res.status).toBe(200);
    expect(res.headers.get("vary")).toContain("Origin");
  });
});

describe("SCALESOCKET_<FLAG> and the process", () => {
  const main = [process.execPath, join(ROOT, "src/main.ts")];

  test("settings from the environment apply, and none of them reaches the child", async () => {
    const s = await spawnServer(
      [...main, "--addr", "127.0.0.1:0", "--passenv=PATH,SCALESOCKET_*", "printenv"],
      {
        env: {
          PATH: process.env.PATH,
          NO_COLOR: "1",
          SCALESOCKET_JWTSECRET: SECRET,
          SCALESOCKET_ORIGIN: "https://good.example",
        },
      },
    );
    const url = `ws://127.0.0.1:${s.port}/r`;
    // SCALESOCKET_JWTSECRET is in force: no token, no websocket.
    expect(await upgradeStatus(url)).toBe(401);
    const { SignJWT } = await import("jose");
    const token = await new SignJWT({ sub: "ann" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(SECRET));
    const client = await TestClient.open(`${url}?token=${token}`, {
      headers: { Origin: "https://good.example" },
    });
    await client.waitClosed();
    const env = envOf(client.received);
    expect(env.REMOTE_USER).toBe("ann");
    expect(env.PATH).toBeDefined();
    expect(Object.keys(env).filter((n) => n.startsWith("SCALESOCKET_"))).toEqual([]);
    expect(JSON.stringify(env)).not.toContain(SECRET);
    expect(s.log()).not.toContain(SECRET);
    // SCALESOCKET_ORIGIN is in force too.
    const evil = new TestClient(`${url}?token=${token}`, { headers: { Origin: "https://evil.example" } });
    await expect(within(evil.opened, "refused open")).rejects.toThrow();
  });

  test("an open server on a public address warns once at start; --origin or an auth flag silences it", async () => {
    const open = await spawnServer([...main, "--addr", "0.0.0.0:0", "cat"]);
    await open.waitLog(/neither --origin nor an auth flag/);
    const guarded = await spawnServer([...main, "--addr", "0.0.0.0:0", "--origin", "same", "cat"]);
    const local = await spawnServer([...main, "--addr", "127.0.0.1:0", "cat"]);
    // The warning comes before the listening line, which spawnServer waited for.
    for (const s of [open, guarded, local])
      expect(await upgradeStatus(`ws://127.0.0.1:${s.port}/x`)).toBe(101);
    expect(guarded.log()).not.toContain("neither --origin");
    expect(local.log()).not.toContain("neither --origin");
    expect(open.log().match(/neither --origin/g)?.length).toBe(1);
  });
});
