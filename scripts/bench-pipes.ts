#!/usr/bin/env bun
/**
 * One `cat`, one-line round trips, over the two kinds of stdio a child can get: plain OS pipes (src/child/pipes.ts,
 * what scalesocket uses) and Bun.spawn's own `"pipe"` (unix socketpairs). Prints µs per round trip and this
 * process's CPU µs per round trip for each, alternating kinds over a few repetitions.
 *
 *   bun scripts/bench-pipes.ts [round trips per run, default 20000]
 */
import { openPipe } from "../src/child/pipes.ts";

const ROUND_TRIPS = Number(process.argv[2] ?? 20_000);
const REPETITIONS = 3;
const LINE = "hello world\n";

type Kind = "os pipes" | "bun socketpairs";

async function run(kind: Kind): Promise<{ wallUs: number; cpuUs: number }> {
  let sink: { write(s: string): unknown; flush(): unknown; end(): unknown };
  let output: ReadableStream<Uint8Array>;
  let release = (): void => {};
  let proc: ReturnType<typeof Bun.spawn>;
  if (kind === "os pipes") {
    const stdin = openPipe();
    const stdout = openPipe();
    if (!stdin || !stdout) throw new Error("no OS pipes on this platform");
    proc = Bun.spawn(["cat"], { stdio: [stdin.read.fd, stdout.write.fd, "inherit"] });
    stdin.read.close();
    stdout.write.close();
    sink = Bun.file(stdin.write.fd).writer();
    output = Bun.file(stdout.read.fd).stream();
    release = () => {
      stdin.write.close();
      stdout.read.close();
    };
  } else {
    const child = Bun.spawn(["cat"], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    proc = child;
    sink = child.stdin;
    output = child.stdout;
  }
  const reader = output.getReader();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < ROUND_TRIPS; i++) {
    sink.write(LINE);
    sink.flush();
    let got = 0;
    while (got < LINE.length) {
      const { value, done } = await reader.read();
      if (done) throw new Error("cat ended early");
      got += value.byteLength;
    }
  }
  const wallUs = ((performance.now() - t0) * 1000) / ROUND_TRIPS;
  const cpu = process.cpuUsage(cpu0);
  await sink.end();
  release();
  await proc.exited;
  return { wallUs, cpuUs: (cpu.user + cpu.system) / ROUND_TRIPS };
}

const kinds: Kind[] = ["os pipes", "bun socketpairs"];
console.log(`${ROUND_TRIPS} round trips through cat per run, Bun ${Bun.version}`);
for (let rep = 0; rep < REPETITIONS; rep++) {
  for (const kind of rep % 2 === 0 ? kinds : [...kinds].reverse()) {
    const r = await run(kind);
    console.log(
      `${kind.padEnd(16)} ${r.wallUs.toFixed(1)} µs/round trip, ${r.cpuUs.toFixed(1)} µs CPU (this process)`,
    );
  }
}
