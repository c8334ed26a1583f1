/** Framing of one direction of traffic between clients and the child. */
export type FrameMode = "json" | "gwsocket";

export type LogFormat = "text" | "json";

export interface CacheConfig {
  /** `all` caches every broadcast message; `tagged` only JSON messages with `"_cache": true`. */
  type: "all" | "tagged";
  size: 1 | 8 | 64;
}

/** Everything the server needs, validated once by the CLI. Nothing here is optional at run time. */
export interface Config {
  /** The wrapped command and its arguments; spawned as argv, never through a shell. */
  cmd: string;
  args: string[];
  hostname: string;
  port: number;
  /** `--addr unix:PATH`: listen on this unix socket instead of `hostname:port`. */
  unixPath: string | null;
  /** `--deflate`: permessage-deflate for clients that offer it. */
  deflate: boolean;
  /** `--subprotocol`: the subprotocols the server speaks, in its order of preference; null takes none. */
  subprotocols: string[] | null;
  /** Seconds without traffic before a client is closed; 0 never. */
  idleTimeout: number;
  /** `--pingms`: the server's own ping interval; null leaves pings to Bun (shortly before the idle timeout). */
  pingMs: number | null;
  binary: boolean;
  cache: CacheConfig | null;
  cachePersist: boolean;
  /** Seconds to wait before attaching to the child (`--delay`); null means the transport's default. */
  delay: number | null;
  /** Characters the child's output is split on; null means the default (`\n`). */
  delimiters: string | null;
  clientFrame: FrameMode | null;
  serverFrame: FrameMode | null;
  joinMsg: string | null;
  leaveMsg: string | null;
  log: LogFormat;
  metrics: boolean;
  api: boolean;
  oneshot: boolean;
  /** Names or picomatch globs of the server's variables that the child inherits. */
  passEnv: string[];
  /** Names or picomatch globs of the accepted rooms; null accepts every room. */
  rooms: string[] | null;
  /** At most this many rooms, counting those whose child is still being stopped; null is no limit. */
  maxRooms: number | null;
  /** At most this many open websockets on the server; null is no limit. */
  maxClients: number | null;
  /** At most this many open websockets from one client IP (`Connection.remoteIp`); null is no limit. */
  maxPerIp: number | null;
  /** Largest client message in bytes; the websocket closes a client that sends more (1009). */
  maxMessage: number;
  /** Messages per second per client (a token bucket holding two seconds' worth); null is no limit. */
  rateLimit: number | null;
  /** Bytes queued for all clients together; past it the clients with the most queued are closed (1013). */
  maxQueued: number;
  /** When a room's child is taken to crash, and how long its room is then refused (no flag; tests shorten it). */
  crashBackoff: CrashBackoffConfig;
  staticDir: string | null;
  /** Serve the built-in dev console page at `/` (`--devconsole`); never together with `staticDir`. */
  devConsole: boolean;
  tcp: boolean;
  /** `--pty`: the child runs on a pseudo-terminal of this size (`--ptysize`); null: on pipes. */
  pty: { cols: number; rows: number } | null;
  /** `--passstderr`: the child's stderr lines also go to its room's clients. */
  passStderr: boolean;
  tcpPorts: [number, number];
  /** 0 info, 1 debug (`-v`), 2 trace (`-vv`). */
  verbosity: number;
  /**
   * Most bytes queued for one peer: a client's outgoing websocket buffer, or a child's stdin.
   * Past it a client is closed (1013) and a message to a child that does not read is dropped.
   */
  maxBuffer: number;
  /** Milliseconds between SIGTERM and SIGKILL when a child is stopped. */
  graceMs: number;
  /** With `--tcp`: how long after the delay a child may take to start listening (no flag; tests shorten it). */
  tcpTimeoutMs: number;
  /** Allowed `Origin` values (`--origin`): exact, picomatch globs, or `same`; null lets every origin in. */
  origins: string[] | null;
  /** How upgrades are authenticated: a signed token (`--jwtsecret`, `--jwtkey`), a forward-auth URL, or none. */
  auth: AuthConfig | null;
  /** With `--authurl`: how long the auth service may take to answer (no flag; tests shorten it). */
  authTimeoutMs: number;
  /** `--tlscert`/`--tlskey`, read and checked at start; null serves plain ws/http. */
  tls: TlsConfig | null;
  /** Peers (IPs or CIDRs) whose `Forwarded`/`X-Forwarded-For` name the client (`--trustproxy`); null trusts none. */
  trustProxy: string[] | null;
  /**
   * Stdio children get plain OS pipes (faster than Bun's socketpairs, see child/pipes.ts) where libc can be
   * loaded. No flag: always on; tests turn it off to cover the fallback to Bun's own pipes.
   */
  osPipes: boolean;
  /** `--cluster` and its companions: the Redis directory rooms are leased in; null on a single node. */
  cluster: ClusterConfig | null;
  /** `--drain`: on SIGTERM, how long open rooms may go on while no new one opens; null stops at once. */
  drainMs: number | null;
}

/** A cluster node: where the directory is, who this node is to the others, and the lease's timing. */
export interface ClusterConfig {
  /** The Redis URL, password and db included (never logged as it is: see `redactUrl`). */
  url: string;
  /** `ws://host:port` other nodes forward clients to; null derives it from the address bound. */
  advertise: string | null;
  /** HMAC key of the forwarding header. */
  secret: string;
  leaseMs: number;
  /**
   * Clock margin: a room is stopped so that its child is gone this long before its lease can have ended, for
   * clocks that drift apart and timers that fire late (docs/cluster.md).
   */
  marginMs: number;
}

/** A signed-token or forward-auth check at the upgrade. Key material is read and checked by the CLI. */
export type AuthConfig =
  | { kind: "jwtsecret"; secret: string }
  /** `text` is the file's content: a PEM public key or a JWKS (JSON). */
  | { kind: "jwtkey"; file: string; text: string }
  | { kind: "authurl"; url: string };

export interface TlsConfig {
  certFile: string;
  keyFile: string;
  /** PEM contents, read once at start: a restart picks up new certificates (Bun cannot swap them live). */
  cert: string;
  key: string;
}

/**
 * A room whose child ended on its own within `windowMs` of its start `streak` times in a row is refused for
 * `firstMs`, doubling with each further quick end up to `maxMs`.
 */
export interface CrashBackoffConfig {
  windowMs: number;
  streak: number;
  firstMs: number;
  maxMs: number;
}

export const DEFAULTS = {
  addr: "0.0.0.0:9000",
  passEnv: "PATH,DYLD_LIBRARY_PATH",
  tcpPorts: "9001:9999",
  /** A console's size, which programs assume when they cannot ask. */
  ptySize: "80x24",
  /** 4 MiB: several seconds of a fast room for a client on a slow link, and bounded for thousands of clients. */
  maxBuffer: 4 * 1024 * 1024,
  /** Enough live children for a busy single node, few enough that names chosen by strangers cannot exhaust it. */
  maxRooms: 1024,
  /** Far above what an interactive message needs; one message can no longer hold the event loop for long. */
  maxMessage: 1024 * 1024,
  /** A fraction of a small host's memory: 128 clients each at the default --maxbuffer. */
  maxQueued: 512 * 1024 * 1024,
  /** A restart loop is slowed to one spawn a minute at worst, and a child that crashed by accident soon retried. */
  crashBackoff: { windowMs: 1000, streak: 3, firstMs: 1000, maxMs: 60_000 },
  /** Long enough for a script to save its state on SIGTERM, short enough that a stuck one does not linger. */
  graceSeconds: 2,
  /** Upstream attaches to a TCP child after one second. */
  tcpDelaySeconds: 1,
  /** Upstream tries once; retrying for 10 s covers a slow interpreter start without hiding a child that never listens. */
  tcpTimeoutMs: 10_000,
  /** Long enough for an auth service on another host, short enough that a stuck one does not hold upgrades. */
  authTimeoutMs: 5_000,
  /** Bun's default: long enough for a client behind a slow link, short enough to shed dead peers. */
  idleTimeoutSeconds: 120,
  /** A dead node's rooms reopen elsewhere within this; renewals every third of it are a trifle for Redis. */
  leaseSeconds: 10,
} as const;

/** Room names that are HTTP endpoints of their own and are refused as websocket rooms. */
export const RESERVED_ROOMS: ReadonlySet<string> = new Set([
  "api",
  "metrics",
  "health",
  "static",
  "upload",
  "robots.txt",
  "favicon.ico",
]);
