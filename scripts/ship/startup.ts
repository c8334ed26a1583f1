#!/usr/bin/env bun
/**
 * Start-up time of a built binary: from just before exec to the first connection it accepts.
 *
 * Each run picks a free port, spawns `<binary> --addr 127.0.0.1:<port> cat` and tries a TCP connect in a
 * tight loop until one succeeds (the server has bound, listens and accepted it), then opens a websocket (the
 * HTTP upgrade handled by the JavaScript). Prints every run and the median, fastest and slowest of each.
 *
 * Usage: bun scripts/ship/startup.ts [binary] [--runs N]   (binary: dist/scalesocket-<this machine's target>)
 */
import { createServer } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { binaryPath, hostTarget } from "./targets.ts";

const { values, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  options: { runs: { type: "string", default: "20" } },
  allowPositionals: true,
});
const binary = positionals[0] ?? join(new URL("../..", import.meta.url).pathname, binaryPath(hostTarget()));
const runs = Number(values.runs);
const GIVE_UP_MS = 5000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** One TCP connect: true once the server accepts it, false while nothing listens. */
function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(socket) {
          socket.end();
          resolve(true);
        },
        data() {},
        connectError: () => resolve(false),
        error: () => resolve(false),
      },
    }).catch(() => resolve(false));
  });
}

function websocketOpens(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/startup`);
    ws.onopen = () => {
      ws.close();
      resolve();
    };
    ws.onerror = () => reject(new Error("websocket failed after the TCP connect succeeded"));
  });
}

async function once(): Promise<{ accept: number; websocket: number }> {
  const port = await freePort();
  const t0 = performance.now();
  const proc = Bun.spawn([binary, "--addr", `127.0.0.1:${port}`, "cat"], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
  });
  try {
    while (!(await connects(port))) {
      if (performance.now() - t0 > GIVE_UP_MS) throw new Error(`no connection within ${GIVE_UP_MS} ms`);
      if (proc.exitCode !== null) throw new Error(`${binary} exited with code ${proc.exitCode}`);
    }
    const accept = performance.now() - t0;
    await websocketOpens(port);
    return { accept, websocket: performance.now() - t0 };
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

function summary(label: string, values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  const f = (v: number) => v.toFixed(1);
  return `${label}: median ${f(median)} ms (fastest ${f(sorted[0] as number)}, slowest ${f(sorted.at(-1) as number)})`;
}

const accept: number[] = [];
const websocket: number[] = [];
await once(); // warm the page cache, as on any machine that ran the binary before
for (let i = 0; i < runs; i++) {
  const r = await once();
  accept.push(r.accept);
  websocket.push(r.websocket);
}
console.log(`${binary} --addr 127.0.0.1:<port> cat, ${runs} runs`);
console.log(`first TCP connection accepted (ms): ${accept.map((v) => v.toFixed(1)).join(" ")}`);
console.log(summary("exec → first accepted connection", accept));
console.log(summary("exec → first websocket open", websocket));
