import type { Logger } from "../log.ts";
import type { ClusterCounters } from "./stats.ts";
import { ACQUIRE, infoKey, leaseKey, RELEASE, RENEW, type Store } from "./store.ts";

/** What the leases need from the rooms they guard. */
export interface LeaseHooks {
  /** Whether the room has an open room or a child still stopping on this node: its lease must be kept. */
  inUse(name: string): boolean;
  /** The lease could not be renewed in time (or another node holds it): end the room here now. */
  fence(name: string): void;
  /** The room's lobby record (JSON) written beside its lease at each renewal. */
  record(name: string): string;
}

export interface LeaseTiming {
  leaseMs: number;
  marginMs: number;
  /** `--grace`: a child's stop takes up to two of them (input ended, SIGTERM, SIGKILL). */
  graceMs: number;
}

interface Held {
  /** `performance.now()` when the last command that set or extended the lease was sent. */
  renewedAt: number;
  /** Until then the lease is kept for a connection admitted at the upgrade and not open yet. */
  pendingUntil: number;
  fenced: boolean;
}

/** The answer of {@link Leases.acquire}: this node holds the lease now, or another node does. */
export type Acquired = { kind: "mine" } | { kind: "other"; node: string };

/** At most this many leases are renewed by one script, so one round of renewals never holds Redis long. */
const RENEW_BATCH = 500;

/**
 * The room leases this node holds, renewed together by one timer, and fenced by another.
 *
 * A lease taken or extended by a command sent at local time `t` lasts at least until `t + lease` (Redis starts
 * counting when it runs the command, which is later). A room is therefore stopped at
 * `t + lease - margin - 2 * grace`: its child is gone, SIGKILL included, a margin before any other node could
 * take the lease, even if this node never hears from Redis again. The margin covers clocks whose rates differ
 * and timers that fire late (docs/cluster.md).
 */
export class Leases {
  private readonly held = new Map<string, Held>();
  private renewTimer: Timer | null = null;
  private fenceTimer: Timer | null = null;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly me: string,
    private readonly timing: LeaseTiming,
    private readonly hooks: LeaseHooks,
    private readonly counters: ClusterCounters,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.held.size;
  }

  /** Starts the renewal round, every third of the lease. */
  start(): void {
    this.scheduleRenewal(this.timing.leaseMs / 3);
  }

  /** Whether this node may open room `name` now: it holds the lease, not fenced and not about to be. */
  holds(name: string): boolean {
    const h = this.held.get(name);
    return h !== undefined && !h.fenced && this.now() < this.fenceAt(h);
  }

  /**
   * Takes room `name`'s lease, or learns who holds it; one round trip. Rejects when Redis cannot be reached.
   * A lease taken here is kept for the connection being admitted until it opened (or a lease has passed).
   */
  async acquire(name: string): Promise<Acquired> {
    const sentAt = this.now();
    let holder: unknown;
    try {
      holder = await this.store.eval(ACQUIRE, [leaseKey(name)], [this.me, String(this.timing.leaseMs)]);
    } catch (err) {
      this.counters.directoryErrors.acquire++;
      throw err;
    }
    if (holder !== this.me) return { kind: "other", node: String(holder) };
    const h = this.held.get(name);
    if (h === undefined) {
      this.counters.leasesAcquired++;
      this.held.set(name, { renewedAt: sentAt, pendingUntil: sentAt + this.timing.leaseMs, fenced: false });
    } else {
      h.renewedAt = Math.max(h.renewedAt, sentAt);
      h.pendingUntil = sentAt + this.timing.leaseMs;
      h.fenced = false;
    }
    this.scheduleFence();
    return { kind: "mine" };
  }

  /**
   * A connection for room `name` was admitted on a lease already held (its room open, or its child stopping):
   * the lease is kept for it until it enters, even if the stopping child is gone first.
   */
  keep(name: string): void {
    const h = this.held.get(name);
    if (h !== undefined) h.pendingUntil = Math.max(h.pendingUntil, this.now() + this.timing.leaseMs);
  }

  /** The connection admitted for room `name` has entered: from now on its room keeps the lease. */
  entered(name: string): void {
    const h = this.held.get(name);
    if (h !== undefined) h.pendingUntil = 0;
  }

  /** The connection admitted for room `name` will not enter (refused here after all). */
  abandon(name: string): void {
    this.entered(name);
    this.releaseIfUnused(name);
  }

  /** Releases room `name`'s lease if nothing here needs it any more: its last child is gone. */
  releaseIfUnused(name: string): void {
    const h = this.held.get(name);
    if (h === undefined || this.hooks.inUse(name) || h.pendingUntil > this.now()) return;
    this.held.delete(name);
    void this.release(name);
  }

  /** Stops the timers and releases every lease (the rooms are gone: shutdown waited for their children). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.renewTimer !== null) clearTimeout(this.renewTimer);
    if (this.fenceTimer !== null) clearTimeout(this.fenceTimer);
    const names = [...this.held.keys()];
    this.held.clear();
    await Promise.allSettled(names.map((name) => this.release(name)));
  }

  private async release(name: string): Promise<void> {
    try {
      await this.store.eval(RELEASE, [leaseKey(name), infoKey(name)], [this.me]);
      this.counters.leasesReleased++;
    } catch {
      // It runs out on its own within a lease; nobody can take it sooner, which is safe.
      this.counters.directoryErrors.release++;
    }
  }

  private fenceAt(h: Held): number {
    const { leaseMs, marginMs, graceMs } = this.timing;
    return h.renewedAt + leaseMs - marginMs - 2 * graceMs;
  }

  private scheduleRenewal(ms: number): void {
    if (this.stopped) return;
    this.renewTimer = setTimeout(() => void this.renew(), ms);
  }

  /**
   * One round: leases nothing needs are released, the others extended in batches. After a failure the round is
   * retried sooner (a tenth of the lease), so one lost answer does not cost a room.
   */
  private async renew(): Promise<void> {
    for (const name of [...this.held.keys()]) this.releaseIfUnused(name);
    const names = [...this.held.keys()];
    let failed = false;
    for (let i = 0; i < names.length; i += RENEW_BATCH) {
      const batch = names.slice(i, i + RENEW_BATCH);
      const sentAt = this.now();
      let result: unknown;
      try {
        result = await this.store.eval(
          RENEW,
          [...batch.map(leaseKey), ...batch.map(infoKey)],
          [this.me, String(this.timing.leaseMs), ...batch.map((n) => this.hooks.record(n))],
        );
      } catch (err) {
        failed = true;
        this.counters.directoryErrors.renew++;
        this.log.warn(`cannot renew ${batch.length} room lease(s): ${(err as Error).message}`);
        continue;
      }
      this.counters.renewals++;
      const kept = Array.isArray(result) ? result : [];
      batch.forEach((name, j) => {
        const h = this.held.get(name);
        if (h === undefined) return;
        if (kept[j] === 1) h.renewedAt = Math.max(h.renewedAt, sentAt);
        else this.lost(name, h, "another node holds its lease");
      });
    }
    this.scheduleFence();
    this.scheduleRenewal(failed ? this.timing.leaseMs / 10 : this.timing.leaseMs / 3);
  }

  /** One timer, for the earliest fence among the leases not fenced yet. */
  private scheduleFence(): void {
    if (this.fenceTimer !== null) clearTimeout(this.fenceTimer);
    this.fenceTimer = null;
    if (this.stopped) return;
    let first = Number.POSITIVE_INFINITY;
    for (const h of this.held.values()) if (!h.fenced) first = Math.min(first, this.fenceAt(h));
    if (first === Number.POSITIVE_INFINITY) return;
    this.fenceTimer = setTimeout(() => this.fenceDue(), Math.max(0, first - this.now()));
  }

  private fenceDue(): void {
    const now = this.now();
    for (const [name, h] of this.held) {
      if (!h.fenced && this.fenceAt(h) <= now) this.lost(name, h, "its lease could not be renewed in time");
    }
    this.scheduleFence();
  }

  private lost(name: string, h: Held, why: string): void {
    if (h.fenced) return;
    h.fenced = true;
    h.pendingUntil = 0;
    this.counters.leasesFenced++;
    if (this.hooks.inUse(name)) {
      this.log.warn({ message: `room moved: ${why}; stopping it here`, tag: name });
      this.hooks.fence(name);
    }
  }
}
