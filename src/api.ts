/** The room API (`--api`, old name `--stats`): the built-in lobby a page uses to list rooms. */

/** One open room as the API shows it. */
export interface RoomInfo {
  name: string;
  connections: number;
  metadata: Record<string, unknown> | null;
}

const HEADERS = {
  "content-type": "application/json",
  // A lobby page is often served from another origin than the websocket server.
  "access-control-allow-origin": "*",
  "cache-control": "no-store",
};

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: HEADERS });
}

/**
 * Answers a path under `/api/`: `rooms` (or `rooms/`) lists the open rooms; `<room>/` (or `<room>`) gives one;
 * `<room>/connections` its number of connections; `<room>/metadata` its metadata or `null`. A room that is
 * not open is 404 with a JSON error. `rest` is the path after `/api/`, still percent-encoded.
 */
export function answerApi(
  rest: string,
  lookup: (name: string) => RoomInfo | undefined,
  all: () => RoomInfo[],
): Response {
  if (rest === "rooms" || rest === "rooms/") return json(all());
  const slash = rest.indexOf("/");
  const segment = slash === -1 ? rest : rest.slice(0, slash);
  const field = slash === -1 ? "" : rest.slice(slash + 1);
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    return json({ error: "invalid room name" }, 400);
  }
  const room = name === "" ? undefined : lookup(name);
  if (room === undefined) return json({ error: `no open room '${name}'` }, 404);
  if (field === "") return json(room);
  if (field === "connections") return json(room.connections);
  if (field === "metadata") return json(room.metadata);
  return json({ error: `unknown field '${field}': expected connections or metadata` }, 404);
}
