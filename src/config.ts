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
  maxRooms: number | null;
  staticDir: string | null;
  /** Serve the built-in dev console page at `/` (`--devconsole`); never together with `staticDir`. */
  devConsole: boolean;
  tcp: boolean;
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
  /**
   * Stdio children get plain OS pipes (faster than Bun's socketpairs, see child/pipes.ts) where libc can be
   * loaded. No flag: always on; tests turn it off to cover the fallback to Bun's own pipes.
   */
  osPipes: boolean;
}

export const DEFAULTS = {
  addr: "0.0.0.0:9000",
  passEnv: "PATH,DYLD_LIBRARY_PATH",
  tcpPorts: "9001:9999",
  /** 4 MiB: several seconds of a fast room for a client on a slow link, and bounded for thousands of clients. */
  maxBuffer: 4 * 1024 * 1024,
  /** Long enough for a script to save its state on SIGTERM, short enough that a stuck one does not linger. */
  graceSeconds: 2,
  /** Upstream attaches to a TCP child after one second. */
  tcpDelaySeconds: 1,
  /** Upstream tries once; retrying for 10 s covers a slow interpreter start without hiding a child that never listens. */
  tcpTimeoutMs: 10_000,
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
