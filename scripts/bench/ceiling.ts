#!/usr/bin/env bun
/**
 * The ceiling: the least a Bun.serve websocket server can do for each scenario, with no child process.
 * Echo: every message goes straight back to its sender. Fan-out: a start message makes the server itself
 * publish the numbered lines fanout.sh would print, 64 KiB (a pipe's worth) per event-loop turn, to the
 * room's topic (or `_to` each client in turn, a client's lines of one turn corked into one write). Same delivery
 * rules as scalesocket: a client more than 4 MiB behind is closed with 1013 rather than silently dropped from
 * (Bun's default for pub/sub).
 *
 * With `room`, a message that is not a start message goes to the sender's whole room (as `cat` in a shared room
 * makes scalesocket do) instead of back to the sender alone.
 *
 *   bun scripts/bench/ceiling.ts PORT [room]
 */
import type { ServerWebSocket } from "bun";
import { numbered } from "./protocol.ts";

const MAX_BUFFER = 4 * 1024 * 1024;
const LINES_PER_TURN = 1024;

interface Data {
  room: string;
}
type Client = ServerWebSocket<Data>;

const rooms = new Map<string, Set<Client>>();

function routedLine(to: number, k: number): string {
  const head = `{"_to":${to},"n":${k},"p":"`;
  return `${head}${"x".repeat(62 - head.length)}"}`;
}

/** Emits `count` lines to a room, a pipe's worth per turn, as the child's output would arrive. */
function emit(room: string, count: number, json: boolean, routed: boolean): void {
  const members = [...(rooms.get(room) ?? [])];
  let i = 0;
  const turn = () => {
    let pressure = false;
    const end = Math.min(count, i + LINES_PER_TURN);
    if (routed) {
      // Each client's lines of this turn in one corked write, as scalesocket does (a send outside Bun's
      // callbacks is otherwise a system call each).
      const n = members.length;
      for (let c = 0; c < n; c++) {
        const ws = members[c] as Client;
        const first = i + ((c - (i % n) + n) % n);
        ws.cork(() => {
          for (let k = first; k < end; k += n)
            if (ws.send(routedLine(c, Math.floor(k / n))) <= 0) pressure = true;
        });
      }
      i = end;
    }
    for (; i < end; i++) if (server.publish(room, numbered(i, json)) <= 0) pressure = true;
    if (pressure) {
      for (const ws of rooms.get(room) ?? []) {
        if (ws.getBufferedAmount() > MAX_BUFFER) ws.close(1013, "client too slow");
      }
    }
    if (i < count) setImmediate(turn);
  };
  turn();
}

const toRoom = process.argv[3] === "room";

const START = /^(?:\{")?(start|route)"?[: ](\d+)/;

const server = Bun.serve<Data>({
  hostname: "127.0.0.1",
  port: Number(process.argv[2] ?? 0),
  fetch(req, server) {
    const room = new URL(req.url).pathname.slice(1);
    if (server.upgrade(req, { data: { room } })) return undefined;
    return new Response("not found\n", { status: 404 });
  },
  websocket: {
    backpressureLimit: MAX_BUFFER * 2,
    closeOnBackpressureLimit: true,
    open(ws) {
      const members = rooms.get(ws.data.room) ?? new Set<Client>();
      rooms.set(ws.data.room, members);
      members.add(ws);
      ws.subscribe(ws.data.room);
    },
    message(ws, message) {
      if (
        typeof message === "string" &&
        (message.startsWith("start") || message.startsWith("{") || message.startsWith("route"))
      ) {
        const m = START.exec(message);
        if (m) return emit(ws.data.room, Number(m[2]), message.startsWith("{"), m[1] === "route");
      }
      if (toRoom) server.publish(ws.data.room, message);
      else ws.send(message);
    },
    close(ws) {
      const members = rooms.get(ws.data.room);
      members?.delete(ws);
      if (members?.size === 0) rooms.delete(ws.data.room);
    },
  },
});

for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(0));
