import { createHash } from "node:crypto";
import type { Logger } from "../log.ts";
import type { ClusterCounters } from "./stats.ts";
import { HEARTBEAT, NODES_KEY, PEERS, type Store } from "./store.ts";

/**
 * The live nodes of the cluster: each node's heartbeat in one sorted set, scored by its expiry. A draining
 * node leaves it and hands the rooms it may no longer open to a live peer.
 */
export class Peers {
  private timer: Timer | null = null;
  private draining = false;

  constructor(
    private readonly store: Store,
    private readonly me: string,
    private readonly leaseMs: number,
    private readonly counters: ClusterCounters,
    private readonly log: Logger,
  ) {}

  /** Beats now and every third of the lease. */
  start(): void {
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.leaseMs / 3);
  }

  /** Leaves the live set: no peer will hand this node a room any more. */
  drain(): void {
    this.draining = true;
    void this.beat();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * The live node, other than this one, that room `name` goes to; the same for every node that asks (the
   * highest hash of room and node), so that rooms spread and do not move when unrelated nodes come and go.
   * Null when there is none; rejects when Redis cannot be reached.
   */
  async pick(name: string): Promise<string | null> {
    let nodes: unknown;
    try {
      nodes = await this.store.eval(PEERS, [NODES_KEY], []);
    } catch (err) {
      this.counters.directoryErrors.peers++;
      throw err;
    }
    let best: string | null = null;
    let bestScore = "";
    for (const node of Array.isArray(nodes) ? nodes : []) {
      if (typeof node !== "string" || node === this.me) continue;
      const score = createHash("sha256").update(`${name}\n${node}`).digest("hex");
      if (score > bestScore) [best, bestScore] = [node, score];
    }
    return best;
  }

  private async beat(): Promise<void> {
    try {
      await this.store.eval(
        HEARTBEAT,
        [NODES_KEY],
        [this.me, String(this.leaseMs), this.draining ? "1" : "0"],
      );
    } catch (err) {
      this.counters.directoryErrors.peers++;
      this.log.debug(`cluster heartbeat failed: ${(err as Error).message}`);
    }
  }
}
