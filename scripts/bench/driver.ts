/** The orchestrator's handle on a load generator process: send a command, await its one-line result. */
import { join } from "node:path";
import type { FileSink, Subprocess } from "bun";
import type { Command, ProbeStopCommand, Result } from "./protocol.ts";
import { BENCH_DIR, BUN, spawnTracked, stopProcess } from "./servers.ts";

export interface LoadGenerator {
  /** Its process, for its CPU time. */
  readonly pid: number;
  run<R extends Result>(cmd: Command, timeoutMs: number): Promise<R>;
  /** Sends a line that has no answer (`probe-stop`), even while a command runs. */
  signal(cmd: ProbeStopCommand): void;
  stop(): Promise<void>;
}

/** Starts `loadgen.ts` as its own process, pinned to `cpu` if given. */
export function startLoadGenerator(cpu?: number): LoadGenerator {
  const proc = spawnTracked([BUN, join(BENCH_DIR, "loadgen.ts")], { cpu, stdin: "pipe", stdout: "pipe" });
  const stdin = proc.stdin as FileSink;
  const lines = readLines(proc as Subprocess<"pipe", "pipe", "ignore">);
  return {
    pid: proc.pid,
    async run<R extends Result>(cmd: Command, timeoutMs: number): Promise<R> {
      stdin.write(`${JSON.stringify(cmd)}\n`);
      stdin.flush();
      let timer: Timer | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`load generator: no result within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      const line = await Promise.race([lines.next(), timeout]).finally(() => clearTimeout(timer));
      if (line.done) throw new Error("load generator exited");
      const result = JSON.parse(line.value) as R | { kind: "error"; message: string };
      if (result.kind === "error") throw new Error(`load generator: ${result.message}`);
      return result;
    },
    signal(cmd) {
      stdin.write(`${JSON.stringify(cmd)}\n`);
      stdin.flush();
    },
    async stop() {
      try {
        stdin.end();
      } catch {
        // already gone
      }
      await Promise.race([proc.exited, Bun.sleep(2000)]);
      await stopProcess(proc);
    },
  };
}

async function* readLines(proc: Subprocess<"pipe", "pipe", "ignore">): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of proc.stdout) {
    pending += decoder.decode(chunk, { stream: true });
    for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n")) {
      yield pending.slice(0, nl);
      pending = pending.slice(nl + 1);
    }
  }
}
