import type { Admitted } from "../access/index.ts";
import type { ClientAddress } from "../access/proxy.ts";
import type { Client } from "../client.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { RoomRegistry } from "../rooms.ts";
import type { Counters } from "../stats.ts";
import { ClusterDirectory } from "./directory.ts";
import { type ForwardContext, ForwardLeg, type ForwardTarget } from "./forward.ts";
import { FORWARD_HEADER, signClient, verifyClient } from "./identity.ts";
import { createClusterCounters } from "./stats.ts";
import type { Store } from "./store.ts";

/** What the server carries on a websocket for the cluster: where it is forwarded, or that it was forwarded here. */
export interface ForwardData {
  /** Set at the upgrade when the room lives on another node. */
  forward: ForwardTarget | null;
  /** The proxy leg to the owner, once open. */
  leg: ForwardLeg | null;
  /** The client came through another node (its identity from the signed header). */
  forwardedIn: boolean;
}

/** A forwarded upgrade, verified: the client and what access admitted on the entry node. */
export interface ForwardedUpgrade {
  client: ClientAddress;
  admitted: Admitted;
  protocol: string;
}

/**
 * This node's part in a cluster, for the server: the directory, the forwarding of clients both ways, and what
 * `/metrics` and `/api/` add. The server asks it at a few fixed points and nowhere else.
 */
export class ClusterNode {
  readonly directory: ClusterDirectory;
  private readonly legs = new Set<ForwardLeg>();
  private readonly forwardCtx: ForwardContext;

  constructor(
    private readonly config: Config & { cluster: NonNullable<Config["cluster"]> },
    registry: RoomRegistry,
    store: Store,
    me: string,
    counters: Counters,
    log: Logger,
  ) {
    const cluster = createClusterCounters();
    this.directory = new ClusterDirectory(
      registry,
      store,
      me,
      config.cluster,
      config.graceMs,
      counters,
      cluster,
      log,
    );
    this.forwardCtx = { maxBuffer: config.maxBuffer, counters, cluster, log };
  }

  /**
   * The upgrade of a client another node forwarded, when the request says so: who it is, from the signed
   * header, in place of what the hop's own request says; or the reason to refuse it (403). Null for a plain
   * upgrade.
   */
  forwarded(req: Request, room: string): ForwardedUpgrade | string | null {
    const header = req.headers.get(FORWARD_HEADER);
    if (header === null) return null;
    const client = verifyClient(this.config.cluster.secret, header, room);
    if (typeof client === "string") {
      this.directory.counters.forwardForged++;
      return client;
    }
    return {
      client: { ip: client.ip, port: client.port },
      admitted: { user: client.user, query: client.query, headers: new Headers(client.headers) },
      protocol: client.protocol,
    };
  }

  /** Where a client of room `segment` goes when `node` holds its room, with who it is signed for the owner. */
  target(
    node: string,
    room: string,
    path: string,
    client: ClientAddress,
    admitted: Admitted,
    protocol: string,
  ) {
    const header = signClient(this.config.cluster.secret, {
      ip: client.ip,
      port: client.port,
      query: admitted.query,
      headers: [...admitted.headers],
      user: admitted.user,
      room,
      protocol,
    });
    return { url: `${node}${path}`, header } satisfies ForwardTarget;
  }

  /** At `open`: a forwarded-out client gets its leg to the owner; a forwarded-in one is counted. */
  opened(ws: Client & { data: ForwardData }): boolean {
    const { forward } = ws.data;
    if (forward === null) {
      if (ws.data.forwardedIn) {
        this.directory.counters.forwardedIn++;
        this.directory.counters.forwardedInOpen++;
      }
      return false;
    }
    let leg: ForwardLeg;
    try {
      leg = new ForwardLeg(ws, forward, this.forwardCtx, (done) => this.legs.delete(done));
    } catch (err) {
      // The lease names a URL Bun cannot dial: another node's --advertise is wrong.
      this.forwardCtx.log.error(`cannot forward to ${forward.url}: ${(err as Error).message}`);
      this.directory.counters.forwardUnreachable++;
      ws.close(1013, "room's node unreachable: retry");
      return true;
    }
    this.legs.add(leg);
    ws.data.leg = leg;
    ws.data.room = leg;
    return true;
  }

  /** At `close`: the owner hears the client's close. */
  closed(ws: Client & { data: ForwardData }, code: number, reason: string): void {
    ws.data.leg?.clientClosed(code, reason);
    if (ws.data.forwardedIn) this.directory.counters.forwardedInOpen--;
  }

  /** Shutdown: every forwarded client is told (1001) before the directory lets its leases go. */
  closeLegs(): void {
    for (const leg of [...this.legs]) leg.close(1001, "server shutting down");
  }
}
