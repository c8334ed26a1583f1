/** Small helpers for the load generator's websocket clients: open with a timeout, in batches, close all. */

/** How long one connection may take to open before the run counts it as failed. */
export const OPEN_TIMEOUT_MS = 10_000;

/**
 * Connections opened at once. More than the listen backlog would overflow it and cost SYN retransmits (1 s
 * each), which would measure the kernel rather than the server.
 */
const OPEN_BATCH = 64;

/** Opens one websocket, with `headers` if any; rejects on error, an early close, or after OPEN_TIMEOUT_MS. */
export function open(url: string, headers?: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = headers === undefined ? new WebSocket(url) : new WebSocket(url, { headers });
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`${url}: not open after ${OPEN_TIMEOUT_MS} ms`));
    }, OPEN_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(timer);
      ws.onerror = null;
      ws.onclose = null;
      resolve(ws);
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error(`${url}: connection failed`));
    };
    ws.onclose = (e) => {
      clearTimeout(timer);
      reject(new Error(`${url}: closed before open (${e.code} ${e.reason})`));
    };
  });
}

/**
 * Opens one websocket per URL, OPEN_BATCH at a time, in order. `prepare` runs on each before any message can
 * arrive, so no early message is missed.
 */
export async function openAll(
  urls: string[],
  prepare: (ws: WebSocket, i: number) => void,
  headers?: Record<string, string>,
): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  for (let i = 0; i < urls.length; i += OPEN_BATCH) {
    const batch = urls.slice(i, i + OPEN_BATCH).map(async (url, j) => {
      const ws = await open(url, headers);
      prepare(ws, i + j);
      return ws;
    });
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** Closes every socket and waits (bounded) until each reported its close. */
export async function closeAll(sockets: WebSocket[], timeoutMs = 5000): Promise<void> {
  const closed = sockets.map(
    (ws) =>
      new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.addEventListener("close", () => resolve());
        ws.close();
      }),
  );
  await Promise.race([Promise.all(closed), Bun.sleep(timeoutMs)]);
}

/** Percentile of an ascending array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}
