/**
 * Churn: `conns` loops of connect to a new room (so a new child), one round trip, disconnect. Counts the
 * cycles completed in the measured time.
 */
import { cpuTimes } from "../proc.ts";
import { type ChurnCommand, type ChurnResult, numbered, numberOf } from "../protocol.ts";

/** How long one cycle may take before it counts as an error. */
const CYCLE_TIMEOUT_MS = 5000;

function cycle(url: string, json: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let answered = false;
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`${url}: no round trip within ${CYCLE_TIMEOUT_MS} ms`));
    }, CYCLE_TIMEOUT_MS);
    ws.onopen = () => ws.send(numbered(0, json));
    ws.onmessage = (e) => {
      if (answered || numberOf(e.data as string, json) !== 0) return;
      answered = true;
      ws.close();
    };
    ws.onerror = () => {};
    ws.onclose = (e) => {
      clearTimeout(timer);
      if (answered) resolve();
      else reject(new Error(`${url}: closed before the reply (${e.code} ${e.reason})`));
    };
  });
}

export async function runChurn(cmd: ChurnCommand): Promise<ChurnResult> {
  const failures: string[] = [];
  let cycles = 0;
  let errors = 0;
  let next = 0;
  const cpu0 = cpuTimes(cmd.pid);
  const t0 = performance.now();
  const deadline = t0 + cmd.durationMs;
  const loop = async () => {
    while (performance.now() < deadline) {
      try {
        await cycle(`${cmd.base}/${cmd.prefix}-${next++}`, cmd.json);
        cycles++;
      } catch (err) {
        errors++;
        if (failures.length < 5) failures.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: cmd.conns }, loop));
  const t1 = performance.now();
  const cpu1 = cpuTimes(cmd.pid);
  return {
    kind: "churn",
    cycles,
    seconds: (t1 - t0) / 1000,
    cpuSeconds: cpu1.own - cpu0.own,
    childCpuSeconds: cpu1.children - cpu0.children,
    errors,
    failures,
  };
}
