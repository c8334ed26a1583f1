import type { Config } from "../config.ts";
import { type Framing, oversizeWarning, type RoomOutput, templateNotices } from "./framing.ts";
import { outputSplitter } from "./output.ts";

/*
 * JSON framing (`--frame=json`): client messages are stamped with the sender's ID, child lines may be routed.
 * The rules are pure functions; the room's hot path calls them, so each avoids parsing where the text cannot
 * matter.
 */

/**
 * Stamps a client message with `"_from": id` as the first key, the way upstream prints it
 * (`{"_to":1}` becomes `{"_from":1,"_to":1}`). Returns null for anything that is not a JSON object, which the
 * caller drops. A `_from` sent by the client is replaced, so nobody can speak for another client. The result is
 * always one line, since the child reads line by line.
 */
export function stampFrom(text: string, id: number): string | null {
  const obj = parseObject(text);
  if (obj === null) return null;
  const head = `{"_from":${id}`;
  if (Object.hasOwn(obj, "_from") || text.includes("\n") || text.includes("\r")) {
    // Re-serialise only when the text itself cannot be kept: a spoofed _from, or a line break inside.
    delete obj._from;
    const rest = JSON.stringify(obj);
    return rest === "{}" ? `${head}}` : `${head},${rest.slice(1)}`;
  }
  // Splice the stamp in front of the client's own text; it was just proven to be a valid object.
  for (const _ in obj) return `${head},${text.slice(text.indexOf("{") + 1)}`;
  return `${head}}`;
}

/** What a child line asks for; null when it is a plain broadcast. */
export interface Routing {
  /** Deliver to this connection only. */
  to: number | null;
  /** Not delivered: the room's new metadata, with `_meta` removed. */
  meta: Record<string, unknown> | null;
  /** Eligible for `--cache=tagged`. */
  cache: boolean;
}

/**
 * Reads the routing keys of a child line. A line in which none of the keys is written out (nor a `\u` escape
 * that could spell one; JSON has no other way to write them) cannot carry one, so it is not parsed at all: a
 * line that only carries the `_from` of the message it answers, say.
 */
export function routeLine(line: string): Routing | null {
  if (
    !line.includes('"_to"') &&
    !line.includes('"_meta"') &&
    !line.includes('"_cache"') &&
    !line.includes("\\u")
  )
    return null;
  const obj = parseObject(line);
  if (obj === null) return null;
  const to = obj._to;
  const routing: Routing = {
    to: typeof to === "number" && Number.isInteger(to) && to > 0 ? to : null,
    meta: null,
    cache: obj._cache === true,
  };
  if (obj._meta === true) {
    delete obj._meta;
    routing.meta = obj;
  }
  return routing.to === null && routing.meta === null && !routing.cache ? null : routing;
}

/** The JSON object `text` holds, or null for invalid JSON and for any other JSON value. */
function parseObject(text: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

/**
 * The most a `_from` stamp adds to a client's object: `"_from":` (8 bytes), an ID of up to 10 digits, a comma;
 * plus the newline. Re-serialising (a spoofed `_from`, a line break inside) only shortens a message, but for a
 * number such as `1e21`, which JSON.stringify writes `1e+21`; such a message can still pass the limit and is
 * then dropped by the child's input like any message that does not fit.
 */
const STAMP_OVERHEAD = 8 + 10 + 1 + 1;

const utf8 = new TextDecoder();

/**
 * JSON framing (`--frame=json`, `--json`): a client message must be a JSON object and reaches the child stamped
 * with its sender; a child line may be routed to one client (`_to`), stored as the room's metadata (`_meta`) or
 * marked for the tagged cache (`_cache`); anything else is broadcast as it is.
 */
export function jsonFraming(config: Config): Framing {
  return {
    refusal: "a JSON object",
    overhead: STAMP_OVERHEAD,
    toChild(message, from) {
      const stamped = stampFrom(typeof message === "string" ? message : utf8.decode(message), from);
      return stamped === null ? null : `${stamped}\n`;
    },
    ...templateNotices(config, "\n"),
    stderr: (line) => JSON.stringify({ _stderr: line }),
    addressed: true,
    reader: (room) =>
      outputSplitter(
        { binary: false, delimiters: config.delimiters, maxMessage: config.maxBuffer },
        (message) => routeMessage(room, message as string),
        (size) => room.dropped(oversizeWarning(size, config.maxBuffer)),
      ),
  };
}

/** Delivers one child line as its routing keys ask. */
function routeMessage(room: RoomOutput, line: string): void {
  const routing = routeLine(line);
  if (routing === null) room.broadcast(line, false);
  else if (routing.meta !== null) room.setMetadata(routing.meta);
  // Routed messages are private: never cached.
  else if (routing.to !== null) room.sendTo(routing.to, line);
  else room.broadcast(line, routing.cache);
}
