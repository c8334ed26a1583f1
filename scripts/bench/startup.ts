/** Start-up: from exec of the server to its first accepted connection. */
import type { Subprocess } from "bun";
import { freePort, type System, type spawnTracked } from "./servers.ts";

const TIMEOUT_MS = 10_000;

/** One TCP connection attempt; true once something listens. */
async function tryConnect(port: number): Promise<boolean> {
  try {
    const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    sock.end();
    return true;
  } catch {
    return false;
  }
}

/** One websocket attempt; true once open. */
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

export interface Startup {
  /** Exec to the first TCP connection the kernel accepted: the server is listening. */
  listenMs: number;
  /** Exec to the first websocket `open`: the server ran its handlers (for scalesocket and websocketd, that
   * includes starting the room's `cat`). */
  openMs: number;
}

/** Spawns the server and polls, a fresh attempt every millisecond, first with TCP then with a websocket. */
export async function measureStartup(
  system: System,
  spawn: typeof spawnTracked,
  stop: (proc: Subprocess) => Promise<void>,
): Promise<Startup> {
  const port = freePort();
  const argv = system.argv(port, "echo");
  if (argv === null) throw new Error(`${system.label} does not apply`);
  const url = `ws://127.0.0.1:${port}/startup`;
  const t0 = performance.now();
  const proc = spawn(argv, { stderrFile: "/dev/null" });
  const poll = async (attempt: () => Promise<boolean>): Promise<number> => {
    while (performance.now() - t0 < TIMEOUT_MS) {
      if (await attempt()) return performance.now() - t0;
      if (proc.exitCode !== null) throw new Error(`exited with code ${proc.exitCode}`);
      await Bun.sleep(1);
    }
    throw new Error(`no connection accepted within ${TIMEOUT_MS} ms`);
  };
  try {
    const listenMs = await poll(() => tryConnect(port));
    const openMs = await poll(() => tryOpen(url));
    return { listenMs, openMs };
  } finally {
    await stop(proc);
  }
}
