/**
 * Endpoints: `/metrics` and `/api/rooms` with many rooms open (one idle client each). Each path is fetched
 * `requests` times in turn; the time of each request, from the request sent to the whole body read, is what a
 * scraper or a lobby page waits, and what every websocket of the server waits while it renders.
 */
import type { EndpointsCommand, EndpointsResult } from "../protocol.ts";
import { closeAll, openAll, percentile } from "./clients.ts";

export async function runEndpoints(cmd: EndpointsCommand): Promise<EndpointsResult> {
  const failures: string[] = [];
  const urls = Array.from({ length: cmd.rooms }, (_, i) => `${cmd.base}/${cmd.prefix}-${i}`);
  const sockets = await openAll(urls, (ws) => {
    ws.onmessage = () => {};
  });
  const http = cmd.base.replace(/^ws:/, "http:");
  const timings: EndpointsResult["paths"] = [];
  for (const path of cmd.paths) {
    const times = new Float64Array(cmd.requests);
    let bytes = 0;
    for (let i = 0; i < cmd.requests; i++) {
      const t0 = performance.now();
      const res = await fetch(`${http}${path}`);
      const body = await res.text();
      times[i] = performance.now() - t0;
      bytes = body.length;
      if (res.status !== 200) failures.push(`${path}: HTTP ${res.status}`);
      else if (i === 0 && !body.includes(`${cmd.prefix}-${cmd.rooms - 1}`))
        failures.push(`${path}: the last room opened is not listed`);
    }
    times.sort();
    timings.push({ path, p50Ms: percentile(times, 50), maxMs: times[times.length - 1] ?? 0, bytes });
  }
  await closeAll(sockets, 10_000);
  return { kind: "endpoints", paths: timings, failures: failures.slice(0, 5) };
}
