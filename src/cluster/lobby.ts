import type { RoomInfo } from "../api.ts";
import type { Room } from "../room.ts";
import type { ClusterCounters } from "./stats.ts";
import { INFO_PATTERN, infoKey, type Store } from "./store.ts";

/** A room as the cluster's lobby lists it: the room API's fields and the node it lives on. */
export interface ClusterRoomInfo extends RoomInfo {
  node: string;
}

/** The lobby lists at most this many rooms: one listing must stay a bounded amount of work for Redis and us. */
export const MAX_LISTED = 10_000;

/** Metadata larger than this (as JSON) is not copied into the lobby record; the record says null. */
const MAX_RECORD_METADATA = 4096;

/** The lobby record of a room open here, as the lease renewal writes it beside the lease. */
export function roomRecord(room: Room | undefined, name: string, node: string): string {
  const meta = room?.metadata ?? null;
  const metaJson = meta === null ? "null" : JSON.stringify(meta);
  return JSON.stringify({
    name,
    connections: room?.members.size ?? 0,
    metadata: metaJson.length > MAX_RECORD_METADATA ? null : meta,
    node,
  } satisfies ClusterRoomInfo);
}

function parse(value: unknown): ClusterRoomInfo | null {
  if (typeof value !== "string") return null;
  try {
    return JSON.parse(value) as ClusterRoomInfo;
  } catch {
    return null;
  }
}

/**
 * Reads the cluster's rooms from the records in Redis (SCAN, then MGET), at most {@link MAX_LISTED}; this
 * node's own rooms come from its live map instead, which is fresher than its last renewal.
 */
export class Lobby {
  constructor(
    private readonly store: Store,
    private readonly me: string,
    private readonly local: ReadonlyMap<string, Room>,
    private readonly counters: ClusterCounters,
  ) {}

  async all(): Promise<ClusterRoomInfo[]> {
    const keys: string[] = [];
    let cursor = "0";
    try {
      do {
        const [next, found] = (await this.store.send("SCAN", [
          cursor,
          "MATCH",
          INFO_PATTERN,
          "COUNT",
          "1000",
        ])) as [string, string[]];
        cursor = String(next);
        keys.push(...found);
      } while (cursor !== "0" && keys.length < MAX_LISTED);
      const rooms = new Map<string, ClusterRoomInfo>();
      for (let i = 0; i < keys.length && i < MAX_LISTED; i += 1000) {
        const values = (await this.store.send(
          "MGET",
          keys.slice(i, Math.min(i + 1000, MAX_LISTED)),
        )) as unknown[];
        for (const v of values) {
          const info = parse(v);
          if (info !== null && info.node !== this.me) rooms.set(info.name, info);
        }
      }
      for (const name of this.local.keys()) rooms.set(name, this.localInfo(name));
      return [...rooms.values()];
    } catch (err) {
      this.counters.directoryErrors.lobby++;
      throw err;
    }
  }

  async one(name: string): Promise<ClusterRoomInfo | undefined> {
    if (this.local.has(name)) return this.localInfo(name);
    try {
      return parse(await this.store.send("GET", [infoKey(name)])) ?? undefined;
    } catch (err) {
      this.counters.directoryErrors.lobby++;
      throw err;
    }
  }

  private localInfo(name: string): ClusterRoomInfo {
    const room = this.local.get(name);
    return { name, connections: room?.members.size ?? 0, metadata: room?.metadata ?? null, node: this.me };
  }
}
