import type { AccessGate } from "./access/index.ts";
import { answerApi, type RoomInfo } from "./api.ts";
import type { Lobby } from "./cluster/lobby.ts";
import type { Config } from "./config.ts";
// Bun's types declare every .html import as an HTML bundle; `type: "text"` makes it the file's text, which
// `bun build --compile` embeds in the binary.
import devConsoleHtml from "./devconsole.html" with { type: "text" };
import { CONTENT_TYPE, type Family, type RoomSample, renderMetrics } from "./metrics.ts";
import type { Room } from "./room.ts";
import { serveStatic } from "./static.ts";
import type { Counters } from "./stats.ts";

/** A plain-text answer, for errors and refusals. */
export function text(status: number, body: string): Response {
  return new Response(`${body}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/** What the routes need beyond the rooms: `--drain`'s state, and a cluster node's lobby and metrics. */
export interface RouteExtras {
  draining: () => boolean;
  /** The cluster's lobby, listing every node's rooms; null on a single node. */
  lobby: Lobby | null;
  families: () => Family[];
}

const SINGLE: RouteExtras = { draining: () => false, lobby: null, families: () => [] };

/**
 * The server's plain HTTP endpoints, for every request that is not a websocket upgrade: `/health`, `/metrics`
 * (`--metrics`), `/api/` (`--api`), files (`--staticdir`), and 404 for the rest. `rooms` is the live map of the
 * open rooms; `access` decides which pages may read `/api/` from another origin.
 */
export function httpRoutes(
  config: Config,
  rooms: ReadonlyMap<string, Room>,
  counters: Counters,
  access: AccessGate,
  extras: RouteExtras = SINGLE,
): (req: Request, url: URL) => Response | Promise<Response> {
  return (req, url) => {
    if (url.pathname === "/health") {
      // A balancer's health check: a draining server gets no new clients.
      return extras.draining()
        ? Response.json({ status: "draining" }, { status: 503 })
        : Response.json({ status: "ok" });
    }
    if (config.metrics && url.pathname === "/metrics") {
      return new Response(renderMetrics(roomSamples(rooms), counters, extras.families()), {
        headers: { "content-type": CONTENT_TYPE },
      });
    }
    if (config.api && url.pathname.startsWith("/api/")) {
      // A read-only API: nothing there may be changed, whatever the method says.
      if (req.method !== "GET" && req.method !== "HEAD") {
        return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
      }
      const rest = url.pathname.slice("/api/".length);
      const cors = (res: Response) => (config.origins === null ? res : corsByOrigin(res, req, access));
      if (extras.lobby !== null) return clusterApi(rest, extras.lobby).then(cors);
      const res = answerApi(
        rest,
        (name) => roomInfo(rooms.get(name)),
        () => [...rooms.values()].map((r) => roomInfo(r) as RoomInfo),
      );
      return cors(res);
    }
    if (config.devConsole && url.pathname === "/") return devConsole(req);
    if (config.staticDir !== null) return serveStatic(config.staticDir, req, url.pathname);
    return text(404, "not found");
  };
}

const DEV_CONSOLE = devConsoleHtml as unknown as string;

/**
 * `--devconsole`'s page. Its policy allows nothing but the page itself and websockets to this server, so a
 * page that ever loaded something from elsewhere would fail its browser test.
 */
function devConsole(req: Request): Response {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  return new Response(req.method === "HEAD" ? null : DEV_CONSOLE, {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy":
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'",
      "x-content-type-options": "nosniff",
    },
  });
}

/**
 * The lobby of a cluster node: every node's rooms, each with the `node` it lives on, read from the directory
 * (one room looked up by itself, the list bounded); 503 when the directory cannot be reached.
 */
async function clusterApi(rest: string, lobby: Lobby): Promise<Response> {
  try {
    if (rest === "rooms" || rest === "rooms/") {
      const list = await lobby.all();
      return answerApi(
        rest,
        () => undefined,
        () => list,
      );
    }
    let name = "";
    try {
      name = decodeURIComponent(rest.split("/", 1)[0] as string);
    } catch {}
    const one = name === "" ? undefined : await lobby.one(name);
    return answerApi(
      rest,
      () => one,
      () => [],
    );
  } catch {
    return Response.json({ error: "cluster directory unavailable" }, { status: 503 });
  }
}

/**
 * With `--origin`, the lobby is readable cross-origin only by the pages that may connect: their origin is
 * echoed, any other gets no CORS header (and its browser no answer).
 */
function corsByOrigin(res: Response, req: Request, access: AccessGate): Response {
  const origin = req.headers.get("origin");
  res.headers.delete("access-control-allow-origin");
  res.headers.append("vary", "Origin");
  if (origin !== null && access.corsOrigin(origin, req.headers.get("host"))) {
    res.headers.set("access-control-allow-origin", origin);
  }
  return res;
}

function roomInfo(room: Room | undefined): RoomInfo | undefined {
  return room && { name: room.name, connections: room.members.size, metadata: room.metadata };
}

function* roomSamples(rooms: ReadonlyMap<string, Room>): Generator<RoomSample> {
  for (const r of rooms.values()) {
    yield { name: r.name, connectionsTotal: r.connectionsTotal, connectionsOpen: r.members.size };
  }
}
