import { lstatSync, rmSync } from "node:fs";

/**
 * Makes `path` free for a unix socket: nothing there, or a socket file nothing listens on (a server that was
 * killed leaves one behind), which is removed. Throws when a live server holds it, or when something other than
 * a socket is there, which is never removed.
 */
export async function claimUnixSocket(path: string): Promise<void> {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (stat === undefined) return;
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket`);
  if (await listening(path)) throw new Error(`another server is listening on ${path}`);
  rmSync(path, { force: true });
}

/** Whether a connect to the socket at `path` succeeds. */
async function listening(path: string): Promise<boolean> {
  try {
    const socket = await Bun.connect({ unix: path, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    // ECONNREFUSED: the file is left from a server that is gone.
    return false;
  }
}

/** Removes the socket file on the way out, whatever ends the process; Bun removes it only on a clean stop. */
export function removeOnExit(path: string): void {
  process.on("exit", () => rmSync(path, { force: true }));
}
