/**
 * The example configs of deploy/ run as they are (only the host, ports and certificate paths swapped for this
 * run's) in front of the real server: TLS ends at the proxy, the server trusts it (--trustproxy 127.0.0.1) and
 * checks the Origin. The client reaches the proxy over IPv6 loopback while the proxy reaches the server over
 * IPv4, so the address the child sees (::1) can only have come through the forwarded header.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePorts, start, stopAll, TestClient, untilAsync, upgradeAnswer, within } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const DIR = mkdtempSync(join(tmpdir(), "scalesocket-deploy-"));
const CERT = join(DIR, "cert.pem");
const KEY = join(DIR, "key.pem");
execFileSync(
  "openssl",
  [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"],
    ...["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"],
    ...["-keyout", KEY, "-out", CERT],
  ],
  { stdio: "ignore" },
);
const CA = readFileSync(CERT, "utf8");

const proxies = new Set<Subprocess>();
afterEach(async () => {
  for (const p of proxies) p.kill("SIGTERM");
  await within(Promise.all([...proxies].map((p) => p.exited)), "the proxies to exit");
  proxies.clear();
  await stopAll();
});
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

/** `text` with each `[from, to]` swapped, every one of them required to be there. */
function swap(text: string, pairs: [string, string][]): string {
  let out = text;
  for (const [from, to] of pairs) {
    if (!out.includes(from)) throw new Error(`the example config no longer contains ${from}`);
    out = out.replaceAll(from, to);
  }
  return out;
}

/** Resolves once the proxy accepts TLS on the port; fails at once if it exited. */
async function listening(proc: Subprocess, port: number): Promise<void> {
  await untilAsync(async () => {
    if (proc.exitCode !== null) throw new Error(`the proxy exited (${proc.exitCode})`);
    try {
      return (await fetch(`https://[::1]:${port}/health`, { tls: { ca: CA } })).status === 200;
    } catch {
      return false;
    }
  }, `the proxy on port ${port}`);
}

/** The server behind the proxy, and what its child (printenv) saw for a client through `port`. */
async function throughProxy(proxyPort: number, origin: string) {
  const client = await TestClient.open(`wss://[::1]:${proxyPort}/lobby?x=1`, {
    tls: { ca: CA },
    // A client's own X-Forwarded-For must not become its address.
    headers: { Origin: origin, "X-Forwarded-For": "6.6.6.6" },
  });
  await client.waitClosed();
  const env: Record<string, string> = {};
  for (const line of client.received.map(String)) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** The status of an upgrade through the proxy from a foreign origin. */
async function foreignStatus(proxyPort: number): Promise<number> {
  const answer = await upgradeAnswer(
    `https://[::1]:${proxyPort}/lobby`,
    { Origin: "https://evil.example" },
    { tls: { ca: CA } },
  );
  return answer.status;
}

/** The server as the examples run it (printenv as the child, to see what reached it). */
function backend(origin: string) {
  return start(["--trustproxy", "127.0.0.1", "--origin", origin, "printenv"]);
}

describe("deploy/ examples", () => {
  test.skipIf(!Bun.which("nginx"))("nginx: TLS termination, the client's address, the origin", async () => {
    const [port] = await freePorts(1);
    const origin = `https://[::1]:${port}`;
    const t = backend(origin);
    const site = swap(readFileSync(join(ROOT, "deploy/nginx/scalesocket.conf"), "utf8"), [
      ["listen 443 ssl;", `listen [::1]:${port} ssl;`],
      ["/etc/ssl/chat.example.com/fullchain.pem", CERT],
      ["/etc/ssl/chat.example.com/privkey.pem", KEY],
      ["127.0.0.1:9000", `127.0.0.1:${t.server.port}`],
    ]);
    const dir = mkdtempSync(join(DIR, "nginx-"));
    writeFileSync(join(dir, "scalesocket.conf"), site);
    writeFileSync(
      join(dir, "nginx.conf"),
      `error_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n  include ${dir}/scalesocket.conf;\n}\n`,
    );
    const nginx = Bun.spawn(
      ["nginx", "-p", dir, "-c", join(dir, "nginx.conf"), "-g", `daemon off; pid ${dir}/nginx.pid;`],
      { stdout: "ignore", stderr: "ignore" },
    );
    proxies.add(nginx);
    await listening(nginx, port);

    const env = await throughProxy(port, origin);
    expect(env.REMOTE_ADDR).toBe("[::1]:0");
    expect(env.HTTP_HOST).toBe(`[::1]:${port}`);
    expect(env.QUERY_STRING).toBe("x=1");
    expect(await foreignStatus(port)).toBe(403);
  });

  test.skipIf(!Bun.which("caddy"))("Caddy: TLS termination, the client's address, the origin", async () => {
    const [port] = await freePorts(1);
    const origin = `https://[::1]:${port}`;
    const t = backend(origin);
    const dir = mkdtempSync(join(DIR, "caddy-"));
    const site = swap(readFileSync(join(ROOT, "deploy/caddy/Caddyfile"), "utf8"), [
      ["chat.example.com {", `${origin} {`],
      ["/etc/ssl/chat.example.com/fullchain.pem", CERT],
      ["/etc/ssl/chat.example.com/privkey.pem", KEY],
      ["127.0.0.1:9000", `127.0.0.1:${t.server.port}`],
    ]);
    // This run's own settings: no admin endpoint (a shared port), no port 80 for redirects, storage in the run.
    const global = `{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system ${dir}/data\n}\n\n`;
    writeFileSync(join(dir, "Caddyfile"), global + site);
    const caddy = Bun.spawn(["caddy", "run", "--adapter", "caddyfile", "--config", join(dir, "Caddyfile")], {
      stdout: "ignore",
      stderr: "ignore",
      env: { PATH: process.env.PATH ?? "", HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
    });
    proxies.add(caddy);
    await listening(caddy, port);

    const env = await throughProxy(port, origin);
    expect(env.REMOTE_ADDR).toBe("[::1]:0");
    expect(env.HTTP_HOST).toBe(`[::1]:${port}`);
    expect(await foreignStatus(port)).toBe(403);
  });
});
