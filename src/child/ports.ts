/**
 * The ports `--tcp` children listen on (`--tcpports START:END`). Each live child holds one port; the port goes
 * back to the pool when the child exits.
 */

/** Where `--tcp` children bind, and so where a port must be free. */
export const CHILD_HOST = "127.0.0.1";

/**
 * Whether `port` can be bound on 127.0.0.1 right now, found by binding it and letting go at once. A listener
 * anywhere on the port (127.0.0.1, the wildcard address) makes the bind fail, and so does a socket of an exited
 * child still in TIME_WAIT there, which would make the next child's own bind fail too.
 */
export function portIsFree(port: number): boolean {
  try {
    const probe = Bun.listen({ hostname: CHILD_HOST, port, socket: { data() {} } });
    probe.stop(true);
    return true;
  } catch {
    return false;
  }
}

/**
 * A pool of the ports START..END (both included, as `--tcpports` reads). Ports are handed out in turn, and a port
 * given back goes to the end of the line, not the front: the port of a child that just exited may still be in
 * TIME_WAIT, and the least recently used port is the one most likely to be bindable again. A port is never
 * handed out twice before it is given back.
 *
 * Upstream builds its pool from Rust's `start..end`, which leaves END out; here END is a usable port, so
 * `--tcpports 9000:9000` means one port rather than none.
 */
export class PortPool {
  /** The free ports, in the order they will be handed out: a ring over the whole range. */
  private readonly ring: Int32Array;
  private head = 0;
  private count = 0;
  /** 1 for a port handed out and not yet given back, indexed by `port - start`. */
  private readonly out: Uint8Array;

  constructor(
    readonly start: number,
    readonly end: number,
  ) {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 1 || end > 65535 || start > end) {
      throw new RangeError(`invalid port range ${start}:${end}: expected START:END within 1:65535`);
    }
    const size = end - start + 1;
    this.ring = new Int32Array(size);
    this.out = new Uint8Array(size);
    for (let port = start; port <= end; port++) this.push(port);
  }

  /** Ports in the pool, free for the taking. */
  get available(): number {
    return this.count;
  }

  /** The next port, or null when every port is held by a live child. Does not look whether it is bindable. */
  take(): number | null {
    if (this.count === 0) return null;
    const port = this.ring[this.head] as number;
    this.head = (this.head + 1) % this.ring.length;
    this.count--;
    this.out[port - this.start] = 1;
    return port;
  }

  /**
   * The next port that nothing else is using on 127.0.0.1, or null when none is: every pooled port is tried at
   * most once. A busy port stays in the pool, at the end of the line, and is tried again on a later call.
   * Synchronous, so a room can be opened in the same turn as its websocket (no await between check and use).
   */
  takeFree(): number | null {
    for (let tries = this.count; tries > 0; tries--) {
      const port = this.take();
      if (port === null) return null;
      if (portIsFree(port)) return port;
      this.give(port);
    }
    return null;
  }

  /**
   * Returns a port once its child is gone. A port outside the range, or one not handed out (a second `give` for
   * the same exit), is ignored and reported as false, so a double release can never put one port in the line
   * twice.
   */
  give(port: number): boolean {
    if (!Number.isInteger(port) || port < this.start || port > this.end) return false;
    if (this.out[port - this.start] !== 1) return false;
    this.out[port - this.start] = 0;
    this.push(port);
    return true;
  }

  private push(port: number): void {
    this.ring[(this.head + this.count) % this.ring.length] = port;
    this.count++;
  }
}
