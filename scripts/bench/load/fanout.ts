/**
 * Fan-out: N clients in one room; the room's emitter (fanout.sh under scalesocket, the ceiling in-process)
 * prints numbered lines as fast as it can. Every client must get every line, in order, unless the server
 * closed it with 1013 for falling behind, which is reported as such. Anything else is a hard failure.
 */
import { cpuSeconds } from "../proc.ts";
import { type FanoutCommand, type FanoutResult, numberOf, startMessage } from "../protocol.ts";
import { closeAll, openAll } from "./clients.ts";

/** Lets the server finish its side of the last upgrades (subscribing to the room) before the start. */
const SETTLE_MS = 100;

export async function runFanout(cmd: FanoutCommand): Promise<FanoutResult> {
  const failures: string[] = [];
  const fail = (msg: string) => {
    if (failures.length < 5) failures.push(msg);
  };
  const perClient = cmd.routed ? cmd.count / cmd.clients : cmd.count;
  if (!Number.isInteger(perClient)) throw new Error(`count ${cmd.count} is not a multiple of ${cmd.clients}`);
  const expected = new Int32Array(cmd.clients);
  let delivered = 0;
  let complete = 0;
  let slow = 0;
  let lost = 0;
  let tLast = 0;
  let allDone = () => {};
  const settled = () => {
    if (complete + slow + lost === cmd.clients) allDone();
  };
  const done = new Promise<void>((resolve) => {
    allDone = resolve;
  });

  const urls = Array.from({ length: cmd.clients }, () => cmd.url);
  const sockets = await openAll(urls, (ws, i) => {
    let broken = false;
    ws.onmessage = (e) => {
      delivered++;
      if (broken) return;
      const n = numberOf(e.data as string, cmd.json);
      if (n !== expected[i]) {
        broken = true;
        lost++;
        fail(`client ${i}: expected line ${expected[i]}, got ${n === -1 ? JSON.stringify(e.data) : n}`);
        settled();
        return;
      }
      if (++expected[i] === perClient) {
        tLast = performance.now();
        complete++;
        settled();
      }
    };
    ws.onclose = (e) => {
      if (broken || expected[i] === perClient) return;
      broken = true;
      if (e.code === 1013) slow++;
      else {
        lost++;
        fail(`client ${i}: closed (${e.code} ${e.reason}) after ${expected[i]} of ${perClient} lines`);
      }
      settled();
    };
  });
  await Bun.sleep(SETTLE_MS);

  const cpu0 = cpuSeconds(cmd.pid);
  const t0 = performance.now();
  sockets[0]?.send(startMessage(cmd.count, cmd.json, cmd.routed));
  let timer: Timer | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), cmd.timeoutMs);
  });
  // The timer is cleared once the run is over: left running, it would keep the load generator alive for its 60 s.
  const finished = await Promise.race([done.then(() => true), timedOut]).finally(() => clearTimeout(timer));
  const cpu1 = cpuSeconds(cmd.pid);
  if (!finished) {
    const missing = cmd.clients - complete - slow - lost;
    fail(`${missing} clients still missing lines after ${cmd.timeoutMs} ms (delivered ${delivered})`);
  }
  for (const ws of sockets) ws.onclose = null;
  await closeAll(sockets);
  return {
    kind: "fanout",
    delivered,
    seconds: ((tLast || performance.now()) - t0) / 1000,
    cpuSeconds: cpu1 - cpu0,
    complete,
    slow,
    failures,
  };
}
