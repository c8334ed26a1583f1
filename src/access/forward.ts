import type { Logger } from "../log.ts";
import type { Denied } from "./jwt.ts";

/** The request headers the auth service sees, as nginx's auth_request and Traefik's forwardAuth pass them. */
const PASSED = ["cookie", "authorization", "origin", "user-agent"] as const;

/** Headers of a refusal that the client needs to act on it (log in, retry). */
const RETURNED = ["content-type", "location", "www-authenticate", "retry-after", "set-cookie"] as const;

/** A room name as a header value: as it is when it is printable ASCII, else percent-encoded. */
function roomHeader(room: string): string {
  return /^[\x20-\x7e]*$/.test(room) ? room : encodeURIComponent(room);
}

/**
 * Asks `--authurl` whether this upgrade may proceed: `GET url` with the client's credentials, its address
 * appended to `X-Forwarded-For`, and the room in `X-Scalesocket-Room`. A 2xx admits, with the user named in
 * its `X-Scalesocket-User`; any other answer is what the client gets (a 302 to a login page stays a 302); no
 * answer within `timeoutMs` is 503.
 */
export async function forwardAuth(
  url: string,
  req: Request,
  room: string,
  clientIp: string,
  timeoutMs: number,
  log: Logger,
): Promise<{ user: string | null } | (Denied & { response: Response })> {
  const headers = new Headers();
  for (const name of PASSED) {
    const value = req.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  const xff = req.headers.get("x-forwarded-for");
  headers.set("x-forwarded-for", xff === null ? clientIp : `${xff}, ${clientIp}`);
  headers.set("x-scalesocket-room", roomHeader(room));
  let res: Response;
  try {
    res = await fetch(url, { headers, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const timedOut = (err as Error).name === "TimeoutError";
    const reason = timedOut ? "auth service did not answer in time" : "auth service unreachable";
    log.warn(`--authurl: ${reason} (${(err as Error).message})`);
    return { status: 503, reason, response: deny(503, reason) };
  }
  if (res.ok) {
    // Its body is not needed; reading it frees the connection for the next check.
    await res.arrayBuffer().catch(() => {});
    const user = res.headers.get("x-scalesocket-user");
    return { user: user === null || user === "" ? null : user };
  }
  const out = new Headers();
  for (const name of RETURNED) {
    for (const value of name === "set-cookie" ? res.headers.getSetCookie() : [res.headers.get(name)]) {
      if (value !== null) out.append(name, value);
    }
  }
  const body = await res.arrayBuffer().catch(() => new ArrayBuffer(0));
  return {
    status: res.status,
    reason: `refused by the auth service (${res.status})`,
    response: new Response(body, { status: res.status, headers: out }),
  };
}

function deny(status: number, reason: string): Response {
  return new Response(`${reason}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}
