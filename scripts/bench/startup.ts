/** Start-up: from exec of the server to its first accepted websocket connection. */
import type { Subprocess } from "bun";
import { freePort, type System, type spawnTracked } from "./servers.ts";

const TIMEOUT_MS = 10_000;

/** One websocket attempt; resolves true once open, false on refusal. */
function tryOpen(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => {
      resolve(true);
      ws.close();
    };
    ws.onerror = () => resolve(false);
    ws.onclose = () => resolve(false);
  });
}

/**
 * Milliseconds from spawning the server to the first websocket `open` on it (which, for scalesocket and
 * websocketd, includes starting the room's `cat`). Polls with a fresh connection every millisecond.
 */
export async function measureStartup(
  system: System,
  spawn: typeof spawnTracked,
  stop: (proc: Subprocess) => Promise<void>,
): Promise<number> {
  const port = freePort();
  const argv = system.argv(port, "echo");
  if (argv === null) throw new Error(`${system.label} does not apply`);
  const url = `ws://127.0.0.1:${port}/startup`;
  const t0 = performance.now();
  const proc = spawn(argv, { stderrFile: "/dev/null" });
  try {
    while (performance.now() - t0 < TIMEOUT_MS) {
      if (await tryOpen(url)) return performance.now() - t0;
      if (proc.exitCode !== null) throw new Error(`exited with code ${proc.exitCode}`);
      await Bun.sleep(1);
    }
    throw new Error(`no connection accepted within ${TIMEOUT_MS} ms`);
  } finally {
    await stop(proc);
  }
}
