/**
 * A probe: one client in a room of its own keeps one numbered message in flight and times every round trip, until
 * told to stop. It runs in a load generator of its own, so what it measures is the server, not a load generator
 * busy with other clients; each sample carries its time (ms since the epoch, comparable between processes) so the
 * orchestrator can cut the samples at rest from those under load.
 */
import type { ProbeCommand, ProbeResult } from "../protocol.ts";
import { numbered, numberOf } from "../protocol.ts";
import { closeAll, open } from "./clients.ts";

const REPLY_TIMEOUT_MS = 15_000;
/** At most this many samples are kept (a round trip is 0.1 ms or more, so minutes of probing). */
const MAX_SAMPLES = 500_000;

let stopRequested: (() => void) | null = null;

/** Stops the probe that is running, if any (a line of its own on the load generator's stdin). */
export function stopProbe(): void {
  stopRequested?.();
}

export async function runProbe(cmd: ProbeCommand): Promise<ProbeResult> {
  const failures: string[] = [];
  const ws = await open(cmd.url);
  let running = true;
  const stopped = new Promise<void>((resolve) => {
    stopRequested = () => {
      running = false;
      resolve();
    };
  });
  const at: number[] = [];
  const us: number[] = [];
  let onReply: (n: number) => void = () => {};
  ws.onmessage = (e) => onReply(numberOf(e.data as string, false));
  for (let seq = 0; running && at.length < MAX_SAMPLES; seq++) {
    const reply = new Promise<number>((resolve) => {
      onReply = resolve;
    });
    const t0 = performance.now();
    ws.send(numbered(seq % 4096, false));
    const n = await Promise.race([reply, Bun.sleep(REPLY_TIMEOUT_MS).then(() => -2), stopped.then(() => -3)]);
    if (n === -3) break;
    if (n !== seq % 4096) {
      failures.push(
        n === -2 ? `probe: no reply within ${REPLY_TIMEOUT_MS} ms` : `probe: expected ${seq}, got ${n}`,
      );
      break;
    }
    const t1 = performance.now();
    at.push(performance.timeOrigin + t1);
    us.push((t1 - t0) * 1000);
  }
  stopRequested = null;
  await closeAll([ws]);
  return { kind: "probe", at, us, failures };
}
