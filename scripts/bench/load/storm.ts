/**
 * Room-open storm: `conns` concurrent loops open `rooms` new rooms, each with one client that stays connected once
 * its first round trip came back (so its child runs). The probe that times an open room meanwhile runs in another
 * load generator (probe.ts); the storm's start and end say which of its samples were taken during the storm.
 */
import type { StormCommand, StormResult } from "../protocol.ts";
import { numbered, numberOf } from "../protocol.ts";
import { closeAll, open } from "./clients.ts";

/** How long one room may take to open and answer before the run counts it as failed. */
const ROOM_TIMEOUT_MS = 15_000;

/** Opens one room and waits for its first round trip; the socket stays open. */
function openRoom(url: string): Promise<WebSocket> {
  return open(url).then(
    (ws) =>
      new Promise<WebSocket>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${url}: no reply within ${ROOM_TIMEOUT_MS} ms`)),
          ROOM_TIMEOUT_MS,
        );
        ws.onmessage = (e) => {
          clearTimeout(timer);
          if (numberOf(e.data as string, false) !== 0) reject(new Error(`${url}: wrong reply ${e.data}`));
          else resolve(ws);
        };
        ws.onclose = (e) => {
          clearTimeout(timer);
          reject(new Error(`${url}: closed (${e.code} ${e.reason})`));
        };
        ws.send(numbered(0, false));
      }),
  );
}

export async function runStorm(cmd: StormCommand): Promise<StormResult> {
  const failures: string[] = [];
  const sockets: WebSocket[] = [];
  let next = 0;
  let opened = 0;
  const startAt = performance.timeOrigin + performance.now();
  const loop = async () => {
    while (next < cmd.rooms) {
      const url = `${cmd.base}/${cmd.prefix}-${next++}`;
      try {
        sockets.push(await openRoom(url));
        opened++;
      } catch (err) {
        if (failures.length < 5) failures.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: cmd.conns }, loop));
  const endAt = performance.timeOrigin + performance.now();
  if (opened < cmd.rooms) failures.push(`${cmd.rooms - opened} of ${cmd.rooms} rooms did not open`);
  for (const ws of sockets) ws.onclose = null;
  await closeAll(sockets, 10_000);
  return { kind: "storm", rooms: opened, startAt, endAt, failures };
}
