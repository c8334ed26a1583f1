import type { AccessGate } from "./access/index.ts";
import { answerApi, type RoomInfo } from "./api.ts";
import type { Config } from "./config.ts";
// Bun's types declare every .html import as an HTML bundle; `type: "text"` makes it the file's text, which
// `bun build --compile` embeds in the binary.
import devConsoleHtml from "./devconsole.html" with { type: "text" };
import { CONTENT_TYPE, type RoomSample, renderMetrics } from "./metrics.ts";
import type { Room } from "./room.ts";
import { serveStatic } from "./static.ts";
import type { Counters } from "./stats.ts";

/** A plain-text answer, for errors and refusals. */
export function text(status: number, body: string): Response {
  return new Response(`${body}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

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
): (req: Request, url: URL) => Response | Promise<Response> {
  return (req, url) => {
    if (url.pathname === "/health") return Response.json({ status: "ok" });
    if (config.metrics && url.pathname === "/metrics") {
      return new Response(renderMetrics(roomSamples(rooms), counters), {
        headers: { "content-type": CONTENT_TYPE },
      });
    }
    if (config.api && url.pathname.startsWith("/api/")) {
      // A read-only API: nothing there may be changed, whatever the method says.
      if (req.method !== "GET" && req.method !== "HEAD") {
        return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
      }
      const res = answerApi(
        url.pathname.slice("/api/".length),
        (name) => roomInfo(rooms.get(name)),
        () => [...rooms.values()].map((r) => roomInfo(r) as RoomInfo),
      );
      return config.origins === null ? res : corsByOrigin(res, req, access);
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
