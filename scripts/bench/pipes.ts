#!/usr/bin/env bun
/**
 * One `cat`, one-line round trips, over three ways to plumb a child's stdio, alternated over a few repetitions:
 *
 * - scalesocket's: OS pipes, stdin written with write(2) (PipeSink in src/child/pipes.ts), stdout read through
 *   Bun's stream of the pipe, exactly as a room starts its child (src/child/spawn.ts);
 * - the same pipes with stdin written through Bun's FileSink;
 * - Bun.spawn's own `"pipe"` (socket pairs, FileSink and ReadableStream): what scalesocket falls back to.
 *
 * Prints µs per round trip and this process's CPU µs per round trip for each.
 *
 *   bun scripts/bench/pipes.ts [round trips per run, default 20000]
 */
import type { ExitInfo } from "../../src/child/child.ts";
import { openPipe } from "../../src/child/pipes.ts";
import { spawnWithPipes } from "../../src/child/spawn.ts";
import { byteSize } from "../../src/writer.ts";

const ROUND_TRIPS = Number(process.argv[2] ?? 20_000);
const REPETITIONS = 3;
const LINE = "hello world\n";

/** A running `cat`: write a line, wait for bytes back, end it. */
interface Plumbing {
  send(line: string): void;
  /** Resolves with the byte count of the next chunk `cat` wrote. */
  next(): Promise<number>;
  end(): Promise<unknown>;
}

/** Turns a callback reader into one awaited chunk at a time. */
function chunks(read: (onChunk: (chunk: Uint8Array) => void) => Promise<void>): () => Promise<number> {
  const ready: number[] = [];
  let waiter: ((bytes: number) => void) | null = null;
  void read((chunk) => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(chunk.byteLength);
    } else ready.push(chunk.byteLength);
  });
  return () => {
    const bytes = ready.shift();
    if (bytes !== undefined) return Promise.resolve(bytes);
    return new Promise((resolve) => {
      waiter = resolve;
    });
  };
}

/** scalesocket's own path, or Bun's pipes: the same spawnWithPipes a room's stdio transport uses. */
async function started(osPipes: boolean): Promise<Plumbing> {
  const command = {
    cmd: "cat",
    args: [],
    env: { PATH: process.env.PATH ?? "" },
    searchPath: process.env.PATH,
  };
  const child = spawnWithPipes({ ...command, spawner: null }, true, osPipes);
  const proc = await child.process;
  if (child.stdin === null) throw new Error("no stdin");
  const sink = child.stdin();
  return {
    // One line per round trip fits any pipe: the sink takes it whole.
    send: (line) => void sink.write(line, byteSize(line)),
    next: chunks(child.stdout.read),
    end: async () => {
      sink.end();
      return proc.exited as Promise<ExitInfo>;
    },
  };
}

/** OS pipes, stdin through Bun's FileSink. */
function fileSinkPipes(): Plumbing {
  const stdin = openPipe();
  const stdout = openPipe();
  if (!stdin || !stdout) throw new Error("no OS pipes on this platform");
  const proc = Bun.spawn(["cat"], { stdio: [stdin.read.fd, stdout.write.fd, "inherit"] });
  stdin.read.close();
  stdout.write.close();
  const sink = Bun.file(stdin.write.fd).writer();
  const reader = Bun.file(stdout.read.fd).stream().getReader();
  return {
    send: (line) => {
      sink.write(line);
      sink.flush();
    },
    next: async () => {
      const { value, done } = await reader.read();
      if (done) throw new Error("cat ended early");
      return value.byteLength;
    },
    end: async () => {
      await sink.end();
      stdin.write.close();
      await proc.exited;
      reader.releaseLock();
      stdout.read.close();
    },
  };
}

const KINDS = {
  "scalesocket's": () => started(true),
  "pipes, FileSink": async () => fileSinkPipes(),
  "Bun's pipes": () => started(false),
} as const;
type Kind = keyof typeof KINDS;

async function run(kind: Kind): Promise<{ wallUs: number; cpuUs: number }> {
  const cat = await KINDS[kind]();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < ROUND_TRIPS; i++) {
    cat.send(LINE);
    let got = 0;
    while (got < LINE.length) got += await cat.next();
  }
  const wallUs = ((performance.now() - t0) * 1000) / ROUND_TRIPS;
  const cpu = process.cpuUsage(cpu0);
  await cat.end();
  return { wallUs, cpuUs: (cpu.user + cpu.system) / ROUND_TRIPS };
}

const kinds = Object.keys(KINDS) as Kind[];
console.log(`${ROUND_TRIPS} round trips through cat per run, Bun ${Bun.version}`);
for (let rep = 0; rep < REPETITIONS; rep++) {
  for (const kind of rep % 2 === 0 ? kinds : [...kinds].reverse()) {
    const r = await run(kind);
    console.log(
      `${kind.padEnd(15)} ${r.wallUs.toFixed(1)} µs/round trip, ${r.cpuUs.toFixed(1)} µs CPU (this process)`,
    );
  }
}
