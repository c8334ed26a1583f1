import { realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { CacheConfig } from "../config.ts";
import { UsageError } from "./errors.ts";
import { closest } from "./suggest.ts";

/** `value` if it is one of `options`; else an error that lists them, and names the near one for a typo. */
export function oneOf<const T extends readonly string[]>(flag: string, value: string, options: T): T[number] {
  if ((options as readonly string[]).includes(value)) return value as T[number];
  const near = closest(value.toLowerCase(), options);
  const hint = near === undefined ? "" : ` (did you mean ${near}?)`;
  throw new UsageError(`invalid value '${value}' for --${flag}: expected ${options.join(" or ")}${hint}`);
}

/** `host:port`, `[v6]:port` or `:port`; port 0 asks the system for a free one. */
export function parseAddr(value: string): [string, number] {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    // A bare port is the usual slip (other servers take `--port 8080`).
    const hint = /^\d{1,5}$/.test(value) ? ` (for every interface write :${value})` : "";
    throw new UsageError(`invalid value '${value}' for --addr: expected HOST:PORT${hint}`);
  }
  return [m[1] ?? (m[2] || "0.0.0.0"), port];
}

/** `--addr unix:PATH`: the socket's absolute path; null when the address is not a unix one. */
export function parseUnixAddr(value: string): string | null {
  if (!value.startsWith("unix:")) return null;
  const path = value.slice("unix:".length);
  if (path === "") throw new UsageError("invalid value 'unix:' for --addr: expected unix:PATH");
  return resolve(path);
}

/**
 * `--idletimeout`: whole seconds, 0 (never) or 8 to 960. Bun counts idle time in 4-second ticks, rounds 1 to 7
 * up to 8 and takes at most 960; refusing what it would change keeps the flag honest.
 */
export function parseIdleTimeout(value: string): number {
  const n = /^\d{1,4}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n === 0 || (n >= 8 && n <= 960))) {
    throw new UsageError(`invalid value '${value}' for --idletimeout: expected seconds, 0 or 8 to 960`);
  }
  return n;
}

/** `--pingms`: whole milliseconds, 100 to an hour; shorter than the idle timeout, or a live client would be dropped. */
export function parsePingMs(value: string, idleTimeout: number): number {
  const n = /^\d{1,7}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 100 && n <= 3_600_000)) {
    throw new UsageError(`invalid value '${value}' for --pingms: expected milliseconds, 100 to 3600000`);
  }
  if (idleTimeout > 0 && n >= idleTimeout * 1000) {
    throw new UsageError(`--pingms ${value} must be shorter than --idletimeout (${idleTimeout} s)`);
  }
  return n;
}

/** `--subprotocol`: a comma list of tokens (RFC 6455 4.1: subprotocol names are HTTP tokens). */
export function parseSubprotocols(value: string): string[] {
  const list = nonEmptyList("subprotocol", value);
  const bad = list.find((p) => !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(p));
  if (bad !== undefined) {
    throw new UsageError(
      `invalid value '${bad}' for --subprotocol: a subprotocol is a token (no spaces or separators)`,
    );
  }
  return list;
}

/** `--cache`: `[all:|tagged:]SIZE` with SIZE 1, 8 or 64, upstream's only sizes. */
export function parseCache(value: string): CacheConfig {
  const m = /^(?:(all|tagged):)?(1|8|64)$/.exec(value);
  if (!m)
    throw new UsageError(
      `invalid value '${value}' for --cache: expected [all:|tagged:]SIZE with SIZE 1, 8 or 64`,
    );
  return { type: (m[1] ?? "all") as CacheConfig["type"], size: Number(m[2]) as CacheConfig["size"] };
}

/** A duration in seconds, 0 to a day, as a plain decimal. */
export function parseSeconds(flag: string, value: string): number {
  // Plain decimals only: Number() would also take `0x10`, `1e3` and surrounding spaces.
  const n = /^(\d+\.?\d*|\.\d+)$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 0 && n <= 86_400)) {
    throw new UsageError(`invalid value '${value}' for --${flag}: expected seconds, 0 to 86400`);
  }
  return n;
}

/** A whole number from 1. */
export function parsePositiveInt(flag: string, value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) {
    throw new UsageError(`invalid value '${value}' for --${flag}: expected a whole number from 1`);
  }
  return Number(value);
}

/** A whole number from 0, where 0 means no limit (null). */
export function parseLimit(flag: string, value: string): number | null {
  if (!/^\d{1,9}$/.test(value)) {
    throw new UsageError(`invalid value '${value}' for --${flag}: expected a whole number, 0 for no limit`);
  }
  return Number(value) === 0 ? null : Number(value);
}

const SIZE_UNITS: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Bytes, with an optional K, M or G suffix (powers of 1024); at least 1 KiB so one message fits. */
export function parseSize(flag: string, value: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(value);
  const bytes = m ? Number(m[1]) * (SIZE_UNITS[(m[2] ?? "").toUpperCase()] ?? 1) : Number.NaN;
  if (!(bytes >= 1024 && bytes <= 2 ** 40)) {
    throw new UsageError(`invalid value '${value}' for --${flag}: expected a size from 1K, like 512K or 4M`);
  }
  return bytes;
}

/** `--ptysize`: `COLSxROWS`, each 1 to 65535 (a terminal's size is two 16-bit numbers). */
export function parsePtySize(value: string): { cols: number; rows: number } {
  const m = /^(\d{1,5})[xX](\d{1,5})$/.exec(value);
  const cols = Number(m?.[1]);
  const rows = Number(m?.[2]);
  if (!m || cols < 1 || rows < 1 || cols > 65535 || rows > 65535) {
    throw new UsageError(`invalid value '${value}' for --ptysize: expected COLSxROWS, like 80x24`);
  }
  return { cols, rows };
}

/** `--tcpports`: `START:END`, both ends included, within 1:65535. */
export function parsePortRange(value: string): [number, number] {
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(value);
  const start = Number(m?.[1]);
  const end = Number(m?.[2]);
  if (!m || start < 1 || end > 65535 || start > end) {
    throw new UsageError(`invalid value '${value}' for --tcpports: expected START:END within 1:65535`);
  }
  return [start, end];
}

/** A comma list with blanks around entries and empty entries dropped. */
export function splitList(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** A comma list that must name at least one entry. */
export function nonEmptyList(flag: string, value: string): string[] {
  const list = splitList(value);
  if (list.length === 0) throw new UsageError(`--${flag} needs at least one entry`);
  return list;
}

/** The real absolute path of an existing directory. */
export function checkDir(dir: string): string {
  // resolve("") is the working directory, which an empty `--staticdir=` must not serve by accident.
  if (dir === "") throw new UsageError("--staticdir needs a directory");
  const path = resolve(dir);
  try {
    // Not only ENOENT: a file in the middle (ENOTDIR) or a locked parent (EACCES) throws despite the option.
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
      // The real path, so the static file check can compare real paths after resolving symlinks.
      return realpathSync(path);
    }
  } catch {}
  throw new UsageError(`--staticdir '${dir}' is not a directory`);
}
