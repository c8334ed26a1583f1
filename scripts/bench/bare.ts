#!/usr/bin/env bun
/**
 * The floor of churn: scalesocket's own way of starting a child (src/child/spawn.ts: OS pipes, the spawner
 * thread, stdout and stderr read through Bun's streams, stdin written on our non-blocking end through the same bounded writer) under the least
 * server around it. One client per child: each message goes to the child's stdin as a line, each line the child
 * prints comes back (src/framing/output.ts cuts them), stderr is read and dropped. No rooms, CGI environment (PATH only),
 * logging, metrics, JSON framing or input limits.
 * What scalesocket pays per connection above this is its features; what this pays above the ceiling is Bun's.
 *
 *   bun scripts/bench/bare.ts PORT CMD [ARG...]
 */
import type { ServerWebSocket } from "bun";
import { spawnWithPipes } from "../../src/child/spawn.ts";
import { Spawner } from "../../src/child/spawner.ts";
import { outputSplitter } from "../../src/framing/output.ts";
import { BoundedWriter } from "../../src/writer.ts";

interface Data {
  stdin: BoundedWriter | null;
}

const MAX_MESSAGE = 1024 * 1024;

const [port = "0", cmd = "cat", ...args] = process.argv.slice(2);
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
const spawner = new Spawner((err) => console.error(`bare: spawner thread failed: ${err.message}`));

function open(ws: ServerWebSocket<Data>): void {
  const child = spawnWithPipes({ cmd, args, env, searchPath: env.PATH, spawner }, true, true);
  const childStdin = child.stdin;
  if (childStdin === null) throw new Error("bare: the child has no stdin");
  // Messages wait in the writer until the child runs and its stdin exists.
  const stdin = new BoundedWriter(MAX_MESSAGE);
  ws.data.stdin = stdin;
  const lines = outputSplitter(
    { binary: false, delimiters: null, maxMessage: MAX_MESSAGE },
    (line) => ws.send(line),
    () => {},
  );
  child.process.then(
    (proc) => {
      stdin.attach(childStdin());
      const output = child.stdout.read((chunk) => lines.push(chunk)).then(() => lines.end());
      child.stderr.read(() => {});
      // The client is closed once the child is gone and everything it printed was sent.
      Promise.all([proc.exited, output]).then(() => {
        closeStdin(ws);
        ws.close();
      });
    },
    (err: Error) => ws.close(1011, err.message.slice(0, 100)),
  );
}

/** EOF for the child: what the writer still holds goes first. */
function closeStdin(ws: ServerWebSocket<Data>): void {
  const stdin = ws.data.stdin;
  ws.data.stdin = null;
  stdin?.end();
}

Bun.serve<Data>({
  hostname: "127.0.0.1",
  port: Number(port),
  fetch(req, server) {
    if (server.upgrade(req, { data: { stdin: null } })) return undefined;
    return new Response("not found\n", { status: 404 });
  },
  websocket: {
    open,
    message(ws, message) {
      ws.data.stdin?.write(typeof message === "string" ? `${message}\n` : message);
    },
    close: closeStdin,
  },
});

for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(0));
