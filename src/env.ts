import picomatch from "picomatch";

/** What the server knows of one websocket connection when it is accepted. */
export interface Connection {
  id: number;
  room: string;
  /** The query string without `?`, as received. */
  query: string;
  remoteIp: string;
  remotePort: number;
  /** Path after the room segment, `""` when there is none (CGI `PATH_INFO`). */
  pathInfo: string;
  /** The room segment as it appeared in the URL, still percent-encoded (CGI `SCRIPT_NAME`). */
  scriptName: string;
  /** The subprotocol the server answered with (`--subprotocol`), `""` when none. */
  protocol: string;
  headers: Headers;
  /** Who the access check admitted (a token's `sub`, the auth service's answer); null without one. */
  user: string | null;
}

export interface ServerInfo {
  hostname: string;
  port: number;
  software: string;
}

/** `ip:port`, with brackets around an IPv6 address. */
export function remoteAddr(conn: Pick<Connection, "remoteIp" | "remotePort">): string {
  const ip = conn.remoteIp.includes(":") ? `[${conn.remoteIp}]` : conn.remoteIp;
  return `${ip}:${conn.remotePort}`;
}

/**
 * Builds a filter over variable names from `--passenv` entries, which may be picomatch globs (`LC_*`).
 * Plain names are looked up directly, so the common case costs no glob matching.
 */
export function passEnvFilter(entries: readonly string[]): (name: string) => boolean {
  // A name with none of picomatch's special characters is plain; checking that here spares the first
  // `picomatch.scan` (a couple of ms at start-up) for the usual PATH,DYLD_LIBRARY_PATH.
  const plain = new Set(entries.filter((e) => !/[*?[\]{}()!+@|\\]/.test(e) || !picomatch.scan(e).isGlob));
  const globs = entries.filter((e) => !plain.has(e));
  const glob = globs.length > 0 ? picomatch(globs) : null;
  return (name) => plain.has(name) || (glob?.(name) ?? false);
}

/**
 * The variables of the server's environment that `pass` lets through to children. Taken once, when the server
 * starts: nothing changes the server's environment afterwards, and reading all of it costs every room otherwise.
 * `SCALESOCKET_*` variables never pass, whatever `pass` says: they configure the server and may hold secrets.
 */
export function passedEnv(
  pass: (name: string) => boolean,
  source: Readonly<Record<string, string | undefined>>,
): Readonly<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value !== undefined && !name.startsWith("SCALESOCKET_") && pass(name)) env[name] = value;
  }
  return env;
}

/**
 * The child's whole environment: `passed` (the server's variables from {@link passedEnv}), then the CGI
 * variables of the connection that opened the room (RFC 3875, as websocketd sets them), then `extra` (such as
 * `PORT`). Nothing else of the server's environment reaches the child.
 */
export function childEnv(
  passed: Readonly<Record<string, string>>,
  conn: Connection,
  server: ServerInfo,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  // Every room that opens builds one: plain assignments, header names mapped once (docs/performance.md has
  // what this saved per room).
  const env: Record<string, string> = { ...passed };
  let host: string | null = null;
  for (const [key, value] of conn.headers) {
    // httpoxy: a client's `Proxy:` header would become HTTP_PROXY, which many HTTP libraries obey.
    if (key === "proxy") continue;
    if (key === "host") host = value;
    const name = headerVariable(key);
    if (name !== null) env[name] = value;
  }
  env.GATEWAY_INTERFACE = "CGI/1.1";
  env.REQUEST_METHOD = "GET";
  env.SERVER_PROTOCOL = "HTTP/1.1";
  env.SERVER_SOFTWARE = server.software;
  env.SERVER_NAME = host ? hostWithoutPort(host) : server.hostname;
  env.SERVER_PORT = String(server.port);
  env.SCRIPT_NAME = conn.scriptName;
  env.PATH_INFO = conn.pathInfo;
  env.QUERY_STRING = conn.query;
  env.REMOTE_ADDR = remoteAddr(conn);
  env.REMOTE_PORT = String(conn.remotePort);
  env.ROOM = conn.room;
  if (conn.user !== null) env.REMOTE_USER = conn.user;
  if (conn.protocol !== "") env.WEBSOCKET_PROTOCOL = conn.protocol;
  for (const name in extra) env[name] = extra[name] as string;
  return env;
}

/** Header names seen so far and their CGI variables (null: none); bounded, since clients choose the names. */
const headerVariables = new Map<string, string | null>();
const MAX_HEADER_VARIABLES = 256;

/**
 * `user-agent` → `HTTP_USER_AGENT` (RFC 3875 4.1.18); null for a name that is not only letters, digits and
 * dashes. Such headers are dropped, as Apache and nginx drop them: `X_Forwarded_For` would otherwise overwrite
 * `X-Forwarded-For`'s variable, and a name like `x.dot` makes a variable no shell can read. Header names arrive
 * lower-cased.
 */
export function headerVariable(header: string): string | null {
  let name = headerVariables.get(header);
  if (name === undefined) {
    name = /^[a-z0-9-]+$/i.test(header) ? `HTTP_${header.toUpperCase().replaceAll("-", "_")}` : null;
    if (headerVariables.size < MAX_HEADER_VARIABLES) headerVariables.set(header, name);
  }
  return name;
}

function hostWithoutPort(host: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(host);
  return m?.[1] ?? host;
}

const PLACEHOLDER = /#(ID|ROOM|QUERY_STRING|REMOTE_ADDR|USER|PROTOCOL|QUERY_[A-Za-z0-9_.-]+)/g;

/** Percent-encodes every character that could break a JSON string or start a placeholder, keeping URL syntax. */
function urlSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/gu, (c) => encodeURIComponent(c));
}

/**
 * Expands `--joinmsg`/`--leavemsg` placeholders in one pass, so a value can never introduce another
 * placeholder. `#USER` is the admitted user, empty without one; `#PROTOCOL` the subprotocol the server answered
 * with. Values from the client are URL-encoded (`#` becomes `%23`, `"` becomes `%22`), so they cannot break the
 * JSON around them either. `#QUERY_<NAME>` matches the parameter name case-insensitively; a missing parameter
 * expands to the empty string.
 */
export function expandTemplate(template: string, conn: Connection): string {
  if (!template.includes("#")) return template;
  let params: URLSearchParams | undefined;
  return template.replace(PLACEHOLDER, (_, key: string) => {
    switch (key) {
      case "ID":
        return String(conn.id);
      case "ROOM":
        return urlSafe(conn.room);
      case "QUERY_STRING":
        return urlSafe(conn.query);
      case "REMOTE_ADDR":
        return remoteAddr(conn);
      case "USER":
        return urlSafe(conn.user ?? "");
      case "PROTOCOL":
        return urlSafe(conn.protocol);
    }
    const name = key.slice("QUERY_".length).toLowerCase();
    params ??= new URLSearchParams(conn.query);
    for (const [k, v] of params) if (k.toLowerCase() === name) return encodeURIComponent(v);
    return "";
  });
}
