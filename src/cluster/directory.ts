import type { ClusterConfig } from "../config.ts";
import type { Connection } from "../env.ts";
import type { Logger } from "../log.ts";
import type { Family } from "../metrics.ts";
import type { Room } from "../room.ts";
import type { Admission, Refusal, RoomDirectory, RoomRegistry } from "../rooms.ts";
import { type Counters, countRefusal } from "../stats.ts";
import { Leases } from "./lease.ts";
import { Lobby, roomRecord } from "./lobby.ts";
import { Peers } from "./peers.ts";
import { type ClusterCounters, clusterFamilies } from "./stats.ts";
import { leaseKey, type Store } from "./store.ts";

export const UNAVAILABLE = "cluster directory unavailable";

/**
 * The cluster's {@link RoomDirectory}: the local registry, with a Redis lease per room deciding which node
 * serves it. A room opens on the node its first client reached, which takes the lease before the child is
 * spawned, keeps it while the room or its stopping child lives, and releases it once the child is gone.
 * Clients of a room leased to another node are forwarded there.
 */
export class ClusterDirectory implements RoomDirectory {
  readonly counters: ClusterCounters;
  readonly lobby: Lobby;
  private readonly leases: Leases;
  private readonly peers: Peers;
  private draining = false;

  constructor(
    private readonly registry: RoomRegistry,
    private readonly store: Store,
    /** This node's advertised URL: what its leases hold. */
    readonly me: string,
    config: ClusterConfig,
    graceMs: number,
    private readonly serverCounters: Counters,
    counters: ClusterCounters,
    private readonly log: Logger,
  ) {
    this.counters = counters;
    this.leases = new Leases(
      store,
      me,
      { leaseMs: config.leaseMs, marginMs: config.marginMs, graceMs },
      {
        inUse: (name) => registry.busy(name),
        fence: (name) => registry.evict(name, 1012, "room moved"),
        record: (name) => roomRecord(registry.rooms.get(name), name, me),
      },
      counters,
      log,
    );
    this.peers = new Peers(store, me, config.leaseMs, counters, log);
    this.lobby = new Lobby(store, me, registry.rooms, counters);
    registry.watch((room: Room, stop) => {
      stop.finally(() => this.leases.releaseIfUnused(room.name));
    });
    this.leases.start();
    this.peers.start();
  }

  get rooms(): ReadonlyMap<string, Room> {
    return this.registry.rooms;
  }

  get stopping(): number {
    return this.registry.stopping;
  }

  /** The cluster's metric families, for `/metrics`. */
  families(): Family[] {
    return clusterFamilies(this.counters, this.leases.size);
  }

  admit(name: string, forwarded = false): Admission | Promise<Admission> {
    // Open here, or leased here and being opened or stopped: no round trip.
    if (this.registry.rooms.has(name) || (!this.draining && this.leases.holds(name))) {
      this.leases.keep(name);
      return this.registry.admit(name);
    }
    return this.draining ? this.handOver(name, forwarded) : this.claim(name, forwarded);
  }

  enter(conn: Connection): Room | Refusal {
    if (!this.registry.rooms.has(conn.room) && !this.leases.holds(conn.room)) {
      // The lease taken at the upgrade was lost since (fenced while Redis was away).
      countRefusal(this.serverCounters, "directory_unavailable");
      return { code: 1013, reason: UNAVAILABLE };
    }
    const entered = this.registry.enter(conn);
    this.leases.entered(conn.room);
    return entered;
  }

  drain(): void {
    this.draining = true;
    this.registry.drain();
    this.peers.drain();
  }

  async shutdown(): Promise<void> {
    await this.registry.shutdown();
    this.peers.stop();
    await this.leases.stop();
    this.store.close();
  }

  /** Takes the room's lease, or learns which node holds it. */
  private async claim(name: string, forwarded: boolean): Promise<Admission> {
    let got: Awaited<ReturnType<Leases["acquire"]>>;
    try {
      got = await this.leases.acquire(name);
    } catch (err) {
      this.log.warn({ message: `cannot open the room: ${(err as Error).message}`, tag: name });
      return { kind: "refuse", status: 503, reason: UNAVAILABLE, label: "directory_unavailable" };
    }
    if (got.kind === "other") {
      // A forwarded client is never forwarded again: the room moved while it was on its way.
      if (forwarded) return { kind: "refuse", status: 503, reason: "room moved: retry", label: "room_moved" };
      return { kind: "forward", node: got.node };
    }
    const admission = this.registry.admit(name);
    if (admission.kind !== "here") this.leases.abandon(name);
    return admission;
  }

  /** Draining: a room not open here goes to its owner, or else to a live peer, which will open it. */
  private async handOver(name: string, forwarded: boolean): Promise<Admission> {
    const refuse = this.registry.admit(name);
    if (forwarded) return refuse;
    try {
      const owner = await this.store.send("GET", [leaseKey(name)]);
      if (typeof owner === "string" && owner !== this.me) return { kind: "forward", node: owner };
      if (owner === this.me) return refuse;
      const peer = await this.peers.pick(name);
      return peer === null ? refuse : { kind: "forward", node: peer };
    } catch {
      return refuse;
    }
  }
}
