import { readFileSync } from "node:fs";
import { resolveConfig } from "../src/cli/index.ts";
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
  const config = { ...resolveConfig(["--addr", "127.0.0.1:0", "--grace", "0.5", ...argv]), ...overrides };
  const logs: string[] = [];
  const server = serve(
    config,
    createLogger(config.log, 2, (line) => void logs.push(line)),
  );
  running.add(server);
  return {
    server,
    config,
    logs,
    url: (room) => `ws://127.0.0.1:${server.port}/${room}`,
    http: (path) => `http://127.0.0.1:${server.port}${path}`,
  };
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

  constructor(url: string) {
    this.ws = new WebSocket(url);
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

  static async open(url: string): Promise<TestClient> {
    const client = new TestClient(url);
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

/** The HTTP status a websocket upgrade of `url` gets, for upgrades the server refuses. */
export async function upgradeStatus(url: string): Promise<number> {
  const res = await fetch(url.replace(/^ws/, "http"), {
    headers: {
      Connection: "Upgrade",
      Upgrade: "websocket",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version": "13",
    },
  });
  await res.arrayBuffer();
  return res.status;
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
