/**
 * Room-open storm: `conns` concurrent loops open `rooms` new rooms, each with one client that stays connected once
 * its first round trip came back (so its child runs). Meanwhile a probe client in a room opened before keeps one
 * numbered message in flight and times each round trip; its latency at rest is measured first, for as many
 * round trips, so the two percentiles compare like with like.
 */
import type { StormCommand, StormResult } from "../protocol.ts";
import { numbered, numberOf } from "../protocol.ts";
import { closeAll, open, percentile } from "./clients.ts";

/** How long one room may take to open and answer before the run counts it as failed. */
const ROOM_TIMEOUT_MS = 15_000;

interface Probe {
  /** Collects round trips until `stop()`; resolves with them in µs, sorted. */
  run(): { stop(): Promise<Float64Array> };
}

function probeOf(ws: WebSocket, fail: (msg: string) => void): Probe {
  let seq = 0;
  let sentAt = 0;
  let onReply = () => {};
  ws.onmessage = (e) => {
    const n = numberOf(e.data as string, false);
    if (n !== seq % 4096) fail(`probe: expected ${seq}, got ${n}`);
    onReply();
  };
  return {
    run() {
      const samples: number[] = [];
      let running = true;
      const loop = (async () => {
        while (running) {
          const replied = new Promise<void>((resolve) => {
            onReply = resolve;
          });
          sentAt = performance.now();
          ws.send(numbered(seq % 4096, false));
          const ok = await Promise.race([
            replied.then(() => true),
            Bun.sleep(ROOM_TIMEOUT_MS).then(() => false),
          ]);
          if (!ok) {
            fail(`probe: no reply within ${ROOM_TIMEOUT_MS} ms`);
            return;
          }
          samples.push((performance.now() - sentAt) * 1000);
          seq++;
        }
      })();
      return {
        async stop() {
          running = false;
          await loop;
          return Float64Array.from(samples).sort();
        },
      };
    },
  };
}

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
  const fail = (msg: string) => {
    if (failures.length < 5) failures.push(msg);
  };
  const probeWs = await open(`${cmd.base}/${cmd.prefix}-probe`);
  const probe = probeOf(probeWs, fail);

  // A few round trips first, discarded: the probe room's child may still be starting.
  const warm = probe.run();
  await Bun.sleep(100);
  await warm.stop();
  // At rest: the same probe, for the storm's expected length, with nothing else going on.
  const rest = probe.run();
  await Bun.sleep(cmd.restMs);
  const atRest = await rest.stop();

  const sockets: WebSocket[] = [];
  let next = 0;
  let opened = 0;
  const during = probe.run();
  const t0 = performance.now();
  const loop = async () => {
    while (next < cmd.rooms) {
      const url = `${cmd.base}/${cmd.prefix}-${next++}`;
      try {
        sockets.push(await openRoom(url));
        opened++;
      } catch (err) {
        fail((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: cmd.conns }, loop));
  const seconds = (performance.now() - t0) / 1000;
  const inStorm = await during.stop();
  if (opened < cmd.rooms) fail(`${cmd.rooms - opened} of ${cmd.rooms} rooms did not open`);
  for (const ws of sockets) ws.onclose = null;
  await closeAll([...sockets, probeWs], 10_000);
  return {
    kind: "storm",
    rooms: opened,
    seconds,
    restP50Us: percentile(atRest, 50),
    restP99Us: percentile(atRest, 99),
    restSamples: atRest.length,
    stormP50Us: percentile(inStorm, 50),
    stormP99Us: percentile(inStorm, 99),
    stormSamples: inStorm.length,
    failures,
  };
}
