import type { MessageCache } from "./cache.ts";

/**
 * With `--cachepersist`, caches of closed rooms are kept, at most this many and at most this many times
 * `--maxbuffer` in all (the least recently closed go first), so a stream of one-off room names cannot grow
 * memory without bound.
 */
export const MAX_PERSISTED_CACHES = 10_000;

export const MAX_PERSISTED_BUFFERS = 16;

/** Caches of closed rooms, kept for their next opening; bounded in count and bytes, least recently kept first out. */
export class PersistedCaches {
  /** In the order kept: a Map iterates in insertion order, so the first entry is the least recently closed. */
  private readonly kept = new Map<string, MessageCache>();
  private total = 0;

  constructor(
    readonly maxCaches: number,
    readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.kept.size;
  }

  /** What the kept caches hold, in bytes (as {@link MessageCache.bytes} counts). */
  get bytes(): number {
    return this.total;
  }

  /** Keeps `cache` as the room's, the most recently closed; the least recently closed go past the bounds. */
  keep(name: string, cache: MessageCache): void {
    this.take(name);
    this.kept.set(name, cache);
    this.total += cache.bytes;
    while (this.kept.size > this.maxCaches || this.total > this.maxBytes) {
      const [oldest, dropped] = this.kept.entries().next().value as [string, MessageCache];
      this.kept.delete(oldest);
      this.total -= dropped.bytes;
    }
  }

  /** The room's kept cache, no longer kept here; undefined when there is none. */
  take(name: string): MessageCache | undefined {
    const cache = this.kept.get(name);
    if (cache === undefined) return undefined;
    this.kept.delete(name);
    this.total -= cache.bytes;
    return cache;
  }
}
