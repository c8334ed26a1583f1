/** Memory: the server's RSS before and with `clients` idle connections over `rooms` rooms, and its children's. */
import { childrenOf, rssKiB } from "../proc.ts";
import type { MemoryCommand, MemoryResult } from "../protocol.ts";
import { closeAll, open, openAll } from "./clients.ts";

export async function runMemory(cmd: MemoryCommand): Promise<MemoryResult> {
  // One connection first, so code paths that allocate once (the websocket machinery, the first spawn) are
  // in the baseline rather than charged to the idle clients.
  const warm = await open(`${cmd.base}/${cmd.prefix}-warmup`);
  await closeAll([warm]);
  await Bun.sleep(cmd.settleMs);
  const rssBeforeKiB = rssKiB(cmd.pid);

  const urls = Array.from({ length: cmd.clients }, (_, i) => `${cmd.base}/${cmd.prefix}-${i % cmd.rooms}`);
  const sockets = await openAll(urls, (ws) => {
    ws.onmessage = () => {};
  });
  await Bun.sleep(cmd.settleMs);
  const rssAfterKiB = rssKiB(cmd.pid);
  const children = childrenOf(cmd.pid);
  const childrenRssKiB = children.reduce((sum, pid) => sum + rssKiB(pid), 0);
  await closeAll(sockets, 10_000);
  return {
    kind: "memory",
    rssBeforeKiB,
    rssAfterKiB,
    children: children.length,
    childrenRssKiB,
    failures: [],
  };
}
