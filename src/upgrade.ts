import type { Server } from "bun";
import picomatch from "picomatch";
import {
  type AccessGate,
  type AccessResult,
  type Admitted,
  type ClientAddress,
  clientAddress,
  trustedProxies,
} from "./access/index.ts";
import type { ClusterNode, ForwardData } from "./cluster/node.ts";
import { type Config, RESERVED_ROOMS } from "./config.ts";
import { text } from "./http.ts";
import { type ConnectionLimits, type LimitedData, roomNameProblem } from "./limits.ts";
import type { Logger } from "./log.ts";
import type { Admission, RoomDirectory } from "./rooms.ts";
import { type Counters, countRefusal, type RefusalReason } from "./stats.ts";
import { chooseSubprotocol } from "./wire.ts";

const MAX_ID = 0xffff_ffff;

/** What Bun carries on each websocket: the limits' data, and the cluster's. */
export type ServerData = LimitedData & ForwardData;

/** What the upgrade shares with the server: connection IDs, `--oneshot`'s one client, and whether it stops. */
export interface UpgradeState {
  nextId: number;
  oneshotTaken: boolean;
  stopped: boolean;
}

/** The room an upgrade asks for, as the URL names it. */
interface Target {
  name: string;
  /** The room segment, still percent-encoded. */
  segment: string;
  pathInfo: string;
  /** The subprotocol answered (`--subprotocol`), empty when none. */
  protocol: string;
}

/**
 * The websocket upgrade, before the 101: the room's name and `--rooms`, the subprotocol, access (origin, token,
 * auth service), the server's limits, then the directory (here, refused, or forwarded to the room's node). A
 * client another node forwarded skips the checks that node made, on the strength of the signed header. Each
 * refusal is an HTTP status with a one-line reason, counted by its label.
 */
export function upgrader(
  config: Config,
  log: Logger,
  counters: Counters,
  access: AccessGate,
  limits: ConnectionLimits,
  state: UpgradeState,
  deps: () => { directory: RoomDirectory; cluster: ClusterNode | null },
): (
  req: Request,
  url: URL,
  server: Server<ServerData>,
) => Response | undefined | Promise<Response | undefined> {
  const roomAllowed = config.rooms === null ? null : picomatch(config.rooms, { dot: true });
  const trusted = config.trustProxy === null ? null : trustedProxies(config.trustProxy);

  const refuse = (status: number, why: string, label: RefusalReason, response?: Response): Response => {
    countRefusal(counters, label);
    log.debug(`refused a websocket: ${why}`);
    return response ?? text(status, why);
  };

  /** The upgrade once access is decided; what it checks may have changed while a token was verified. */
  const enterUpgrade = (
    req: Request,
    server: Server<ServerData>,
    target: Target,
    client: ClientAddress,
    decided: AccessResult,
    forwarded: boolean,
  ): Response | undefined | Promise<Response | undefined> => {
    if ("status" in decided) {
      const label =
        decided.status === 403 ? "origin" : decided.status === 401 ? "unauthorized" : "auth_service";
      return refuse(decided.status, decided.reason, label, decided.response);
    }
    if (state.stopped) return refuse(503, "server is shutting down", "shutting_down");
    if (config.oneshot && state.oneshotTaken)
      return refuse(503, "--oneshot: already serving a client", "oneshot_busy");
    // Limits: the server's own (open websockets, per client IP), then the room's (--maxrooms).
    const limited = limits.admit(client.ip);
    if (limited !== null) return refuse(limited.status, limited.reason, limited.label);
    // The directory: here, refused, or (in a cluster) forwarded to the room's node; a Promise when it asks Redis.
    const admission = deps().directory.admit(target.name, forwarded);
    const finish = (a: Admission) => finishUpgrade(req, server, target, client, decided, forwarded, a);
    return admission instanceof Promise ? admission.then(finish) : finish(admission);
  };

  /** The upgrade once the directory answered; the server may have begun to stop meanwhile. */
  const finishUpgrade = (
    req: Request,
    server: Server<ServerData>,
    { name, segment, pathInfo, protocol }: Target,
    client: ClientAddress,
    decided: Admitted,
    forwarded: boolean,
    admission: Admission,
  ): Response | undefined => {
    if (state.stopped) return refuse(503, "server is shutting down", "shutting_down");
    if (admission.kind === "refuse") return refuse(admission.status, admission.reason, admission.label);
    if (state.nextId > MAX_ID)
      return refuse(503, "connection IDs exhausted; restart the server", "ids_exhausted");
    const data: ServerData = {
      conn: {
        id: state.nextId,
        room: name,
        query: decided.query,
        remoteIp: client.ip,
        remotePort: client.port,
        pathInfo,
        scriptName: `/${segment}`,
        protocol,
        // Only a connection that opens a room needs its headers (for the child's HTTP_* variables).
        headers: deps().directory.rooms.has(name) ? new Headers() : decided.headers,
        user: decided.user,
      },
      room: null,
      slow: false,
      bucket: limits.bucket(),
      forward:
        admission.kind === "forward"
          ? (deps().cluster as ClusterNode).target(
              admission.node,
              name,
              `/${segment}${pathInfo}`,
              client,
              decided,
              protocol,
            )
          : null,
      leg: null,
      forwardedIn: forwarded,
    };
    // A forwarded upgrade offered no subprotocol: the entry node answered the client with it.
    const headers = protocol === "" || forwarded ? undefined : { "Sec-WebSocket-Protocol": protocol };
    if (!server.upgrade(req, { data, headers }))
      return refuse(400, "expected a websocket upgrade", "not_upgrade");
    state.nextId++;
    if (config.oneshot) state.oneshotTaken = true;
    return undefined;
  };

  return (
    req: Request,
    url: URL,
    server: Server<ServerData>,
  ): Response | undefined | Promise<Response | undefined> => {
    const path = url.pathname.slice(1);
    const slash = path.indexOf("/");
    const segment = slash === -1 ? path : path.slice(0, slash);
    let name: string;
    try {
      name = decodeURIComponent(segment);
    } catch {
      return refuse(400, "invalid room name: bad percent-encoding", "bad_room_name");
    }
    if (name === "") return refuse(400, "no room: connect to /<room>", "bad_room_name");
    const problem = roomNameProblem(name);
    if (problem !== null) return refuse(400, problem, "bad_room_name");
    if (RESERVED_ROOMS.has(name)) return refuse(400, `room name '${name}' is reserved`, "reserved_room");
    if (roomAllowed !== null && !roomAllowed(name))
      return refuse(400, `room '${name}' is not allowed (--rooms)`, "room_not_allowed");
    const pathInfo = slash === -1 ? "" : path.slice(slash);
    // A client another node forwarded: that node checked its access and chose its subprotocol.
    const forwarded = deps().cluster?.forwarded(req, name) ?? null;
    if (typeof forwarded === "string") return refuse(403, forwarded, "bad_forward");
    if (forwarded !== null) {
      const target = { name, segment, pathInfo, protocol: forwarded.protocol };
      return enterUpgrade(req, server, target, forwarded.client, forwarded.admitted, true);
    }
    let protocol = "";
    if (config.subprotocols !== null) {
      const choice = chooseSubprotocol(req.headers.get("sec-websocket-protocol"), config.subprotocols);
      if (choice.kind === "refuse") return refuse(400, choice.reason, "bad_subprotocol");
      protocol = choice.protocol;
    }
    const target: Target = { name, segment, pathInfo, protocol };
    // Who may connect (access/): a Promise when a token is verified or the auth service is asked.
    const peer = server.requestIP(req);
    const client = clientAddress({ ip: peer?.address ?? "", port: peer?.port ?? 0 }, req.headers, trusted);
    const decided = access.check(req, url, name, client.ip);
    if (decided instanceof Promise)
      return decided.then((d) => enterUpgrade(req, server, target, client, d, false));
    return enterUpgrade(req, server, target, client, decided, false);
  };
}
