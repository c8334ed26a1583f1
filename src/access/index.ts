/**
 * Who may open a websocket, decided at the upgrade before the 101: the `Origin` (`--origin`), a signed token
 * (`--jwtsecret`, `--jwtkey`) or an auth service (`--authurl`); and what the child may learn of the request
 * afterwards (never the token). The server calls {@link AccessGate.check} once per upgrade.
 */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { forwardAuth } from "./forward.ts";
import { type Denied, tokenVerifier } from "./jwt.ts";
import { originMatcher } from "./origin.ts";

export { type ClientAddress, clientAddress, trustedProxies } from "./proxy.ts";

/** An admitted upgrade: its user, and the query and headers the room and child get (credentials removed). */
export interface Admitted {
  user: string | null;
  query: string;
  headers: Headers;
}

/** A refused upgrade: the status, a one-line reason, and the response when it is not plain text. */
export type Refused = Denied & { response?: Response };

export type AccessResult = Admitted | Refused;

export interface AccessGate {
  /** Whether any check is configured: when not, `check` admits every request as it is. */
  readonly enabled: boolean;
  /** Whether a request from `origin` may read the server's plain HTTP answers (CORS for `/api/`). */
  corsOrigin(origin: string | null, host: string | null): boolean;
  /**
   * Decides one upgrade for `room`. Synchronous when only `--origin` (or nothing) is set; a Promise when a
   * token is verified or the auth service asked. `clientIp` is the client's address (after `--trustproxy`).
   */
  check(req: Request, url: URL, room: string, clientIp: string): AccessResult | Promise<AccessResult>;
}

/** The `token` query parameter, as the token a browser passes (it cannot set headers on a websocket). */
const TOKEN_PARAM = "token";

/** The query string without its `token` parameters, every other parameter kept byte for byte. */
export function withoutToken(query: string): string {
  // An encoded name (`to%6Ben`) is the same parameter to URLSearchParams, which read the token.
  if (!query.includes(TOKEN_PARAM) && !query.includes("%")) return query;
  return query
    .split("&")
    .filter((part) => {
      const name = part.split("=", 1)[0] as string;
      try {
        return decodeURIComponent(name.replaceAll("+", " ")) !== TOKEN_PARAM;
      } catch {
        return true;
      }
    })
    .join("&");
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The token from `?token=` or else `Authorization: Bearer`. */
function tokenOf(req: Request, url: URL): string | null {
  const param = url.searchParams.get(TOKEN_PARAM);
  if (param !== null && param !== "") return param;
  return BEARER.exec(req.headers.get("authorization") ?? "")?.[1] ?? null;
}

function withoutAuthorization(headers: Headers): Headers {
  const copy = new Headers(headers);
  copy.delete("authorization");
  return copy;
}

/** The access checks `config` asks for; built once when the server starts. */
export function accessGate(config: Config, log: Logger): AccessGate {
  const originOk = config.origins === null ? null : originMatcher(config.origins);
  const auth = config.auth;
  const verify = auth !== null && auth.kind !== "authurl" ? tokenVerifier(auth) : null;
  const open = (url: URL, req: Request): Admitted => ({
    user: null,
    query: url.search.slice(1),
    headers: req.headers,
  });

  return {
    enabled: originOk !== null || auth !== null,
    corsOrigin: (origin, host) => originOk === null || (origin !== null && originOk(origin, host)),
    check(req, url, room, clientIp) {
      if (originOk !== null && !originOk(req.headers.get("origin"), req.headers.get("host"))) {
        return { status: 403, reason: "origin not allowed" };
      }
      if (auth === null) return open(url, req);
      if (auth.kind === "authurl") {
        return forwardAuth(auth.url, req, room, clientIp, config.authTimeoutMs, log).then((r) =>
          "status" in r
            ? r
            : // The auth service had the credentials; the child does not need them.
              { user: r.user, query: url.search.slice(1), headers: withoutAuthorization(req.headers) },
        );
      }
      const token = tokenOf(req, url);
      if (token === null) return { status: 401, reason: "token missing" };
      const query = withoutToken(url.search.slice(1));
      // Any bearer token is a credential, the one checked or another: the child gets neither.
      const headers = BEARER.test(req.headers.get("authorization") ?? "")
        ? withoutAuthorization(req.headers)
        : req.headers;
      return (verify as NonNullable<typeof verify>)(token, room).then((r) =>
        "status" in r ? r : { user: r.user, query, headers },
      );
    },
  };
}
