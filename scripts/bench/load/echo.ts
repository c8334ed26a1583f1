/**
 * Echo: each connection has its own room (its own `cat`) and keeps `window` numbered messages in flight. A
 * reply must be the oldest message outstanding; anything else is a loss or reorder, a hard failure.
 */
import { cpuSeconds } from "../proc.ts";
import { type EchoCommand, type EchoResult, numbered, numberOf } from "../protocol.ts";
import { closeAll, openAll, percentile } from "./clients.ts";

/** How long the replies still in flight at the end may take before they count as lost. */
const DRAIN_MS = 5000;

interface Conn {
  ws: WebSocket;
  sent: number;
  received: number;
  /** Send time of each message in flight, indexed by its number modulo the window. */
  sentAt: Float64Array;
}

export async function runEcho(cmd: EchoCommand): Promise<EchoResult> {
  const failures: string[] = [];
  const fail = (msg: string) => {
    if (failures.length < 5) failures.push(msg);
  };
  let sending = true;
  let measuring = false;
  let completed = 0;
  let outstanding = 0;
  let drained = () => {};
  // Latencies in µs, one per measured round trip; grown by doubling.
  let samples = new Float64Array(1 << 16);
  let nSamples = 0;
  // Prebuilt payloads: the benchmark measures the server, not string formatting in the client.
  const payloads = Array.from({ length: 4096 }, (_, i) => numbered(i, cmd.json));
  const payload = (n: number) => payloads[n % payloads.length] as string;

  const send = (c: Conn) => {
    c.sentAt[c.sent % cmd.window] = performance.now();
    c.ws.send(payload(c.sent));
    c.sent++;
    outstanding++;
  };

  const conns: Conn[] = [];
  const urls = cmd.rooms.map(
    (room) => `${cmd.base}/${room}${cmd.query === undefined ? "" : `?${cmd.query}`}`,
  );
  const headers = cmd.origin === undefined ? undefined : { Origin: cmd.origin };
  const sockets = await openAll(
    urls,
    (ws, i) => {
      const c: Conn = { ws, sent: 0, received: 0, sentAt: new Float64Array(cmd.window) };
      conns[i] = c;
      ws.onmessage = (e) => {
        const n = numberOf(e.data as string, cmd.json);
        if (n === -1) return; // the join message, echoed back by cat under --json
        if (n !== c.received % payloads.length || c.received >= c.sent) {
          fail(`${cmd.rooms[i]}: expected message ${c.received}, got ${n}`);
          return;
        }
        const now = performance.now();
        if (measuring) {
          if (nSamples === samples.length) {
            const grown = new Float64Array(samples.length * 2);
            grown.set(samples);
            samples = grown;
          }
          samples[nSamples++] = (now - (c.sentAt[c.received % cmd.window] as number)) * 1000;
          completed++;
        }
        c.received++;
        outstanding--;
        if (sending) send(c);
        else if (outstanding === 0) drained();
      };
      ws.onclose = (e) => {
        if (sending || c.received < c.sent)
          fail(`${cmd.rooms[i]}: closed by the server (${e.code} ${e.reason})`);
      };
    },
    headers,
  );

  for (const c of conns) for (let k = 0; k < cmd.window; k++) send(c);
  await Bun.sleep(cmd.warmupMs);
  const cpu0 = cpuSeconds(cmd.pid);
  const t0 = performance.now();
  measuring = true;
  await Bun.sleep(cmd.durationMs);
  measuring = false;
  const t1 = performance.now();
  const cpu1 = cpuSeconds(cmd.pid);
  sending = false;

  if (outstanding > 0) {
    const done = new Promise<void>((resolve) => {
      drained = resolve;
    });
    await Promise.race([done, Bun.sleep(DRAIN_MS)]);
    if (outstanding > 0) fail(`${outstanding} messages never came back within ${DRAIN_MS} ms`);
  }
  for (const c of conns) c.ws.onclose = null;
  await closeAll(sockets);

  const sorted = samples.subarray(0, nSamples).sort();
  return {
    kind: "echo",
    roundTrips: completed,
    seconds: (t1 - t0) / 1000,
    cpuSeconds: cpu1 - cpu0,
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    failures,
  };
}
