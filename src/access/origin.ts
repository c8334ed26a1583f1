import picomatch from "picomatch";

/**
 * `--origin` entries: `same`, `null` (what sandboxed frames and `file://` pages send), or an origin
 * (`https://example.com`, `http://localhost:3000`), possibly with globs (`https://*.example.com`). Returns the
 * entry normalised (lower case, no trailing slash), or null when it is none of these.
 */
export function normalizeOrigin(entry: string): string | null {
  const e = entry.toLowerCase().replace(/\/$/, "");
  if (e === "same" || e === "null") return e;
  return /^[a-z*][a-z0-9+.*-]*:\/\/[^/?#\s]+$/.test(e) ? e : null;
}

/**
 * Whether a request's `Origin` is allowed by `entries` (normalised by {@link normalizeOrigin}). A request
 * without `Origin` is not a browser's, and cross-site websocket hijacking needs a browser: it passes. `same`
 * admits an Origin whose host and port are the request's `Host`.
 */
export function originMatcher(
  entries: readonly string[],
): (origin: string | null, host: string | null) => boolean {
  const same = entries.includes("same");
  const exact = new Set(entries.filter((e) => e !== "same" && !picomatch.scan(e).isGlob));
  const globs = entries.filter((e) => e !== "same" && !exact.has(e));
  // Origins are not paths, but picomatch's `*` stopping at `/` is right for them: it never crosses `://`.
  const glob = globs.length > 0 ? picomatch(globs, { dot: true }) : null;
  return (origin, host) => {
    if (origin === null) return true;
    const o = origin.toLowerCase();
    if (exact.has(o) || (glob?.(o) ?? false)) return true;
    return same && host !== null && sameHost(o, host.toLowerCase());
  };
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { "http:": "80", "https:": "443" };

/** `https://example.com` against `Host: example.com:443`: the default port may be written or not. */
function sameHost(origin: string, host: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const port = DEFAULT_PORTS[url.protocol];
  const bare = port !== undefined && host.endsWith(`:${port}`) ? host.slice(0, -port.length - 1) : host;
  return url.host === bare;
}
