import type { ClusterConfig } from "../config.ts";
import { UsageError } from "./errors.ts";
import { parseSeconds } from "./values.ts";

/** The cluster flags as read, before they are checked. */
export interface ClusterFlags {
  cluster?: string;
  advertise?: string;
  clustersecret?: string;
  lease: string;
}

/** Where the server listens, which decides whether `--advertise` can be derived. */
interface Listen {
  hostname: string;
  unixPath: string | null;
  graceMs: number;
}

/** The clock margin for a lease: a tenth of it, and never under 100 ms (docs/cluster.md). */
export function marginFor(leaseMs: number): number {
  return Math.max(100, Math.round(leaseMs / 10));
}

/**
 * The `--cluster` flags, checked together: the secret is required, `--advertise` is required where the address
 * bound says nothing to other hosts (a wildcard, a unix socket), and the lease must leave room for a renewal
 * that fails once and for the child's stop (two grace periods) before it ends.
 */
export function parseCluster(a: ClusterFlags, listen: Listen, leaseGiven: boolean): ClusterConfig | null {
  if (a.cluster === undefined) {
    const stray =
      a.advertise !== undefined ? "advertise" : a.clustersecret !== undefined ? "clustersecret" : null;
    if (stray !== null) throw new UsageError(`--${stray} needs --cluster`);
    if (leaseGiven) throw new UsageError("--lease needs --cluster");
    return null;
  }
  let url: URL | null = null;
  try {
    url = new URL(a.cluster);
  } catch {}
  if (url === null || (url.protocol !== "redis:" && url.protocol !== "rediss:") || url.hostname === "") {
    // The value may hold a password: it is not repeated.
    throw new UsageError(
      "invalid value for --cluster: expected redis://[:PASSWORD@]HOST[:PORT][/DB] or rediss://",
    );
  }
  if (!/^\/?\d*$/.test(url.pathname)) throw new UsageError("invalid value for --cluster: the db is a number");
  if (a.clustersecret === undefined) throw new UsageError("--cluster needs --clustersecret");
  if (new TextEncoder().encode(a.clustersecret).length < 32) {
    throw new UsageError("--clustersecret is too short: use 32 bytes or more (openssl rand -base64 32)");
  }
  const wildcard = listen.hostname === "0.0.0.0" || listen.hostname === "::" || listen.unixPath !== null;
  if (a.advertise === undefined && wildcard) {
    throw new UsageError(
      `--cluster with --addr ${listen.unixPath === null ? listen.hostname : "unix:"} needs --advertise: how other nodes reach this one (ws://10.0.0.5:9000)`,
    );
  }
  const leaseMs = Math.round(parseSeconds("lease", a.lease) * 1000);
  if (leaseMs < 1000) throw new UsageError(`invalid value '${a.lease}' for --lease: at least 1 second`);
  const marginMs = marginFor(leaseMs);
  if (leaseMs - marginMs - 2 * listen.graceMs < leaseMs / 2) {
    // lease - max(100, lease / 10) - 2 * grace >= lease / 2, solved for the lease.
    const least = Math.ceil(Math.max(5 * listen.graceMs, 200 + 4 * listen.graceMs, 1000) / 100) / 10;
    throw new UsageError(
      `--lease ${a.lease} is too short for --grace ${listen.graceMs / 1000}: a room must be stopped within its lease (use --lease ${least} or more)`,
    );
  }
  return {
    url: a.cluster,
    advertise: a.advertise === undefined ? null : parseAdvertise(a.advertise),
    secret: a.clustersecret,
    leaseMs,
    marginMs,
  };
}

/** `--advertise`: a ws:// or wss:// origin (no path), as other nodes dial it. */
export function parseAdvertise(value: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {}
  if (url === null || (url.protocol !== "ws:" && url.protocol !== "wss:") || url.hostname === "") {
    throw new UsageError(
      `invalid value '${value}' for --advertise: expected ws://HOST:PORT or wss://HOST:PORT`,
    );
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.username !== "") {
    throw new UsageError(`invalid value '${value}' for --advertise: an address only, no path or query`);
  }
  return url.origin;
}

/** `--drain`: seconds, in ms; null without the flag. */
export function parseDrain(value: string | undefined): number | null {
  return value === undefined ? null : Math.round(parseSeconds("drain", value) * 1000);
}
