import { realpath, stat } from "node:fs/promises";
import { join, sep } from "node:path";

/**
 * Maps a URL path to a file inside `root` (an absolute, real path), or null when there is none to serve.
 * Refused: undecodable paths, NUL bytes, backslashes, any `.` or `..` segment (also percent-encoded), and
 * anything whose real path (after symlinks) leaves `root`. A directory serves its `index.html`.
 */
export async function resolveStaticPath(root: string, urlPath: string): Promise<string | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return null;
  const segments = decoded.split("/").filter((s) => s !== "");
  // Dot segments never; hidden files (`.env`, `.git/`) neither: a static folder often sits in a project.
  // `.well-known` stays reachable for the conventions that live there.
  if (segments.some((s) => s.startsWith(".") && s !== ".well-known")) return null;
  return fileInside(root, join(root, ...segments), true);
}

/** The real path of `path` if it is a file inside `root`, or a directory's `index.html` (one level only). */
async function fileInside(root: string, path: string, dirIndex: boolean): Promise<string | null> {
  // `root + sep` would be `//` for a root of `/`, which no real path starts with.
  const prefix = root.endsWith(sep) ? root : root + sep;
  try {
    const real = await realpath(path);
    if (real !== root && !real.startsWith(prefix)) return null;
    const st = await stat(real);
    // Not recursive: an `index.html` that is itself a directory (or a link to one) is not followed again.
    if (st.isDirectory()) return dirIndex ? fileInside(root, join(real, "index.html"), false) : null;
    return st.isFile() ? real : null;
  } catch {
    return null;
  }
}

/** Serves GET and HEAD of files under `root` with their content type; 404 for anything else found there. */
export async function serveStatic(root: string, req: Request, pathname: string): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  const path = await resolveStaticPath(root, pathname);
  if (path === null) return new Response("not found\n", { status: 404 });
  const file = Bun.file(path);
  // The content type is the file name's; a browser must not guess another (a text file run as a script).
  const nosniff = { "x-content-type-options": "nosniff" };
  if (req.method === "HEAD") {
    return new Response(null, {
      headers: { "content-type": file.type, "content-length": String(file.size), ...nosniff },
    });
  }
  return new Response(file, { headers: nosniff });
}
