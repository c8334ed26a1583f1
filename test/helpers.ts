import { expect } from "bun:test";
import { readFileSync } from "node:fs";
import net from "node:net";
import type { Subprocess } from "bun";
import { resolveCli, resolveConfig, UsageError } from "../src/cli/index.ts";
import type { Config } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { type RunningServer, serve } from "../src/server.ts";

export const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

/** Every wait in the tests is bounded by this unless a test says otherwise. */
export const WAIT_MS = 5000;

/** Rejects after `ms` with a message naming what was awaited. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface TestServer {
  server: RunningServer;
  config: Config;
  logs: string[];
  url(room: string): string;
  http(path: string): string;
}

const running = new Set<RunningServer>();

/**
 * Starts the real server in-process on a free port with the given command line (as a user would type it, minus
 * `--addr`). Logs are collected in `logs`. Stop it with {@link stopAll} in `afterEach`.
 */
export function start(argv: string[], overrides: Partial<Config> = {}): TestServer {
  // A test that is about --addr gives its own; every other listens on a free loopback port.
  const addr = argv.includes("--addr") ? [] : ["--addr", "127.0.0.1:0"];
  const config = { ...resolveConfig([...addr, "--grace", "0.5", ...argv]), ...overrides };
  const logs: string[] = [];
  const server = serve(
    config,
    createLogger(config.log, 2, (line) => void logs.push(line)),
  );
  running.add(server);
  const host = hostForUrl(config.hostname);
  return {
    server,
    config,
    logs,
    url: (room) => `ws://${host}:${server.port}/${room}`,
    http: (path) => `http://${host}:${server.port}${path}`,
  };
}

/** The host to reach a server bound to `hostname`: a wildcard is reached on loopback, IPv6 goes in brackets. */
function hostForUrl(hostname: string): string {
  if (hostname === "0.0.0.0") return "127.0.0.1";
  if (hostname === "::") return "[::1]";
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

export async function stopAll(): Promise<void> {
  const all = [...running];
  running.clear();
  await Promise.all(all.map((s) => within(s.stop(), "server stop", 10_000)));
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/**
 * A websocket client that queues what it receives, so a test can await the next message, or the close,
 * without missing anything that arrived before it asked.
 */
export class TestClient {
  readonly ws: WebSocket;
  readonly received: (string | Uint8Array)[] = [];
  private readonly waiters: (() => void)[] = [];
  private cursor = 0;
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseInfo>;

  /** `init` is Bun's own: request headers (an `Origin`, as a browser sends) and TLS options for `wss://`. */
  constructor(url: string, init?: Bun.WebSocketOptions) {
    this.ws = init === undefined ? new WebSocket(url) : new WebSocket(url, init);
    this.ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve(), { once: true });
      this.ws.addEventListener("error", () => reject(new Error(`websocket error on ${url}`)), { once: true });
    });
    this.closed = new Promise((resolve) => {
      this.ws.addEventListener("close", (e) => {
        resolve({ code: e.code, reason: e.reason });
        this.wake();
      });
    });
    this.ws.addEventListener("message", (e) => {
      this.received.push(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
      this.wake();
    });
  }

  static async open(url: string, init?: Bun.WebSocketOptions): Promise<TestClient> {
    const client = new TestClient(url, init);
    await within(client.opened, `open ${url}`);
    return client;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next message not yet returned by `next`, as text. */
  async next(ms = WAIT_MS): Promise<string> {
    const msg = await this.nextRaw(ms);
    return typeof msg === "string" ? msg : new TextDecoder().decode(msg);
  }

  async nextRaw(ms = WAIT_MS): Promise<string | Uint8Array> {
    const deadline = Date.now() + ms;
    while (this.cursor >= this.received.length) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error("closed while waiting for a message");
      await within(this.changed(), "a message", Math.max(1, deadline - Date.now()));
    }
    return this.received[this.cursor++] as string | Uint8Array;
  }

  /** Waits until `n` messages have arrived in all. */
  async waitFor(n: number, ms = WAIT_MS): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.received.length < n) {
      if (this.ws.readyState === WebSocket.CLOSED)
        throw new Error(`closed after ${this.received.length} of ${n} messages`);
      await within(
        this.changed(),
        `${n} messages (have ${this.received.length})`,
        Math.max(1, deadline - Date.now()),
      );
    }
  }

  send(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  close(): void {
    this.ws.close();
  }

  waitClosed(ms = WAIT_MS): Promise<CloseInfo> {
    return within(this.closed, "close", ms);
  }
}

/** The headers of a websocket upgrade, for tests that send one by hand. */
export const UPGRADE_HEADERS: Readonly<Record<string, string>> = {
  Connection: "Upgrade",
  Upgrade: "websocket",
  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
  "Sec-WebSocket-Version": "13",
};

/**
 * Sends a websocket upgrade of `url` (ws:, http: or https:) with `headers` added, bounded; redirects are not
 * followed, since an answer before the upgrade (forward auth's) is what such tests look at.
 */
export function upgradeRequest(
  url: string,
  headers: Record<string, string> = {},
  init: { tls?: { ca: string } } = {},
): Promise<Response> {
  return within(
    fetch(url.replace(/^ws/, "http"), {
      ...init,
      redirect: "manual",
      headers: { ...UPGRADE_HEADERS, ...headers },
    }),
    `the answer to an upgrade of ${url}`,
  );
}

/** The status and body of the answer to an upgrade; an accepted one (101) never ends its body, so it has none. */
export async function upgradeAnswer(
  url: string,
  headers: Record<string, string> = {},
  init: { tls?: { ca: string } } = {},
): Promise<{ status: number; body: string }> {
  const res = await upgradeRequest(url, headers, init);
  if (res.status === 101) return { status: 101, body: "" };
  return { status: res.status, body: (await within(res.text(), `the body of the answer to ${url}`)).trim() };
}

/** The HTTP status a websocket upgrade of `url` gets, for upgrades the server refuses. */
export async function upgradeStatus(url: string): Promise<number> {
  return (await upgradeAnswer(url)).status;
}

/** A client that completes the websocket handshake over a raw socket and then stops reading. */
export async function stalledClient(port: number, room: string): Promise<net.Socket> {
  const sock = net.connect(port, "127.0.0.1");
  await within(new Promise((resolve) => sock.once("connect", resolve)), "raw connect");
  const headers = Object.entries(UPGRADE_HEADERS)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  sock.write(`GET /${room} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`);
  const head = await within(new Promise<Buffer>((resolve) => sock.once("data", resolve)), "handshake answer");
  expect(head.toString("latin1")).toStartWith("HTTP/1.1 101");
  sock.pause();
  return sock;
}

/**
 * The message of the UsageError that `argv` (with the environment `env`, none by default) must raise: one line.
 * Fails the test if it raises nothing or anything else.
 */
export function usageError(argv: string[], env: Record<string, string> = {}): string {
  let caught: unknown;
  try {
    resolveCli(argv, env);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(UsageError);
  const message = (caught as UsageError).message;
  expect(message).not.toContain("\n");
  return message;
}

/**
 * True while a process with this pid runs. A zombie counts as dead: an orphan killed by the server is
 * reparented to this sandbox's PID 1, which reaps it only after a while.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Polls `check` until it holds; for state with no event to await (a process that is gone). Bounded. */
export async function until(check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** Like {@link until}, for a check that must await something (an HTTP answer). Bounded. */
export async function untilAsync(check: () => Promise<boolean>, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    if (await within(check(), what, left)) return;
    await Bun.sleep(10);
  }
}

/** The server's `/metrics` text, checked to be OpenMetrics. */
export async function metrics(t: TestServer): Promise<string> {
  const res = await within(fetch(t.http("/metrics")), "/metrics");
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const type = res.headers.get("content-type");
  if (type !== "application/openmetrics-text; version=1.0.0; charset=utf-8")
    throw new Error(`/metrics has content type ${type}`);
  return res.text();
}

/** The value of one sample line (`name{labels}`) of a `/metrics` text, or undefined when the series is absent. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Waits until one `/metrics` sample has the value `value`: for counters that move after the event a test saw. */
export async function untilSample(t: TestServer, series: string, value: number, ms = WAIT_MS): Promise<void> {
  let last: number | undefined;
  await untilAsync(
    async () => {
      last = sample(await metrics(t), series);
      return last === value;
    },
    `${series} to be ${value}`,
    ms,
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last seen: ${last})`);
  });
}

/** A server run as its own process, with its log (stderr) collected as it arrives. */
export interface ServerProcess {
  proc: Subprocess<"ignore", "ignore", "pipe">;
  port: number;
  /** Everything it logged so far. */
  log(): string;
  /** Waits (bounded, and ending if the process exits) until the log matches `pattern`; returns the match. */
  waitLog(pattern: RegExp, ms?: number): Promise<RegExpExecArray>;
}

const spawned = new Set<Subprocess>();

/**
 * Runs a server process (`argv` is the whole command, e.g. `[bun, "src/main.ts", ...flags]`) and waits for its
 * `listening on HOST:PORT` line to learn the port; bounded, and failing at once if the process exits first.
 * Kill what is left with {@link killSpawned} in `afterEach`.
 */
export async function spawnServer(
  argv: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<ServerProcess> {
  const proc = Bun.spawn(argv, {
    cwd: opts.cwd,
    env: opts.env ?? { ...process.env, NO_COLOR: "1" },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  spawned.add(proc);
  let text = "";
  const waiters = new Set<() => void>();
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) {
      text += decoder.decode(chunk, { stream: true });
      for (const wake of waiters) wake();
    }
  })();
  const waitLog = async (pattern: RegExp, ms = WAIT_MS): Promise<RegExpExecArray> => {
    const found = pattern.exec(text);
    if (found) return found;
    let wake = () => {};
    const match = new Promise<RegExpExecArray>((resolve) => {
      wake = () => {
        const m = pattern.exec(text);
        if (m) resolve(m);
      };
      waiters.add(wake);
    });
    // Its last lines may still be in the pipe when it exits: read them before saying it never logged it.
    const ended = proc.exited
      .then(() => reading)
      .then(() => {
        const m = pattern.exec(text);
        if (m) return m;
        throw new Error(`the server exited (${proc.exitCode}) without logging ${pattern}: ${text}`);
      });
    try {
      return await within(Promise.race([match, ended]), `${pattern} in the log`, ms);
    } finally {
      waiters.delete(wake);
    }
  };
  const listening = await waitLog(/listening on (?:\S+):(\d+),/);
  return { proc, port: Number(listening[1]), log: () => text, waitLog };
}

/** Kills (SIGKILL) every process {@link spawnServer} started and waits, bounded, for them to be gone. */
export async function killSpawned(): Promise<void> {
  const all = [...spawned];
  spawned.clear();
  for (const p of all) p.kill("SIGKILL");
  await within(Promise.all(all.map((p) => p.exited)), "spawned servers to exit");
}

/**
 * A free port range of `n` ports on 127.0.0.1. Bases are drawn below Linux's ephemeral range (32768 and up by
 * default), where outgoing connections take their local ports: on a busy machine (a load test beside the suite)
 * a range drawn from the ephemeral ports is often half taken.
 */
export async function freePorts(n: number): Promise<[number, number]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = 20_000 + Math.floor(Math.random() * (12_000 - n));
    const held: { stop(closeActive?: boolean): void }[] = [];
    try {
      for (let p = first; p < first + n; p++)
        held.push(Bun.listen({ hostname: "127.0.0.1", port: p, socket: { data() {} } }));
      return [first, first + n - 1];
    } catch {
      // one of them is taken: try another base
    } finally {
      for (const h of held) h.stop(true);
    }
  }
  throw new Error("no free port range");
}
