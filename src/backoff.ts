import type { CrashBackoffConfig } from "./config.ts";

/**
 * Room names tracked for the crash back-off at most; the least recently updated go first. A stream of new names
 * (each crashing once) cannot grow memory, and a name forgotten this way starts again from no streak.
 */
export const MAX_TRACKED_ROOMS = 10_000;

interface Streak {
  /** Quick ends in a row. */
  count: number;
  /** The back-off now in force, 0 before the streak is long enough. */
  waitMs: number;
  /** When the room may open again (ms, the clock `ended` and `remaining` are given). */
  until: number;
}

/**
 * The crash back-off: a room whose child ends on its own within `windowMs` of its start `streak` times in a row
 * is refused for `firstMs`, then twice as long after each further quick end, up to `maxMs`. A child that lives
 * longer, or a room its clients close, ends the streak. Without it, a child that dies at once, with clients that
 * reconnect, is spawned hundreds of times a second.
 */
export class CrashBackoff {
  private readonly rooms = new Map<string, Streak>();

  constructor(
    private readonly config: CrashBackoffConfig,
    private readonly maxTracked = MAX_TRACKED_ROOMS,
  ) {}

  get tracked(): number {
    return this.rooms.size;
  }

  /** Milliseconds before room `name` may open again; 0 when it may now. */
  remaining(name: string, now = Date.now()): number {
    if (this.rooms.size === 0) return 0;
    const streak = this.rooms.get(name);
    return streak === undefined ? 0 : Math.max(0, streak.until - now);
  }

  /**
   * Room `name` closed; `ranMs` is how long its child ran when it ended on its own or failed to start, null when
   * its clients or the server closed it. Returns the back-off that starts now, 0 for none.
   */
  ended(name: string, ranMs: number | null, now = Date.now()): number {
    if (ranMs === null || ranMs >= this.config.windowMs) {
      this.rooms.delete(name);
      return 0;
    }
    const streak = this.rooms.get(name) ?? { count: 0, waitMs: 0, until: 0 };
    streak.count++;
    if (streak.count >= this.config.streak) {
      streak.waitMs =
        streak.waitMs === 0 ? this.config.firstMs : Math.min(streak.waitMs * 2, this.config.maxMs);
      streak.until = now + streak.waitMs;
    }
    // Re-inserted, so the map's first entry is always the least recently updated.
    this.rooms.delete(name);
    this.rooms.set(name, streak);
    if (this.rooms.size > this.maxTracked) this.rooms.delete(this.rooms.keys().next().value as string);
    return streak.count >= this.config.streak ? streak.waitMs : 0;
  }
}
