import { afterEach, describe, expect, test } from "bun:test";
import type { Server, ServerWebSocket } from "bun";
import { swarmBroadcast, swarmClose, swarmMixed, swarmOpen } from "../../../scripts/bench/load/swarm.ts";
import type { SwarmMixedResult } from "../../../scripts/bench/protocol.ts";
import { start, stopAll } from "../../helpers.ts";

/**
 * The loss and order checks of the busy-node scenarios (scripts/bench/load/swarm.ts), against real servers over
 * real sockets: `npm run bench` must fail when a server loses or reorders a message, and must not when it does
 * neither.
 */

type Fault = "none" | "drop" | "reorder" | "mute";

interface RoomData {
  room: string;
  /** `reorder`: a message of this client held back until its next one went out. */
  held: string | null;
}

/** A relay like the ceiling (each message published to the sender's whole room), with one fault on purpose. */
function relay(fault: Fault): Server<RoomData> {
  let traffic = 0;
  const server: Server<RoomData> = Bun.serve<RoomData>({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, server) {
      const room = new URL(req.url).pathname.slice(1);
      return server.upgrade(req, { data: { room, held: null } })
        ? undefined
        : new Response("expected a websocket\n", { status: 400 });
    },
    websocket: {
      open(ws) {
        ws.subscribe(ws.data.room);
      },
      message(ws: ServerWebSocket<RoomData>, message) {
        const text = String(message);
        const publish = (m: string) => void server.publish(ws.data.room, m);
        // `mute`: the broadcast line (`b…`) of the second room never goes out.
        if (fault === "mute" && text.startsWith("b") && ws.data.room === "swarm-b") return;
        // Only the mixed traffic (`m…`) is tampered with; the room's first round trip goes through.
        if (text.startsWith("m") && ++traffic === 10 && (fault === "drop" || fault === "reorder")) {
          if (fault === "reorder") ws.data.held = text;
          return;
        }
        publish(text);
        if (ws.data.held !== null && text.startsWith("m")) {
          publish(ws.data.held);
          ws.data.held = null;
        }
      },
    },
  });
  return server;
}

const servers: Server<RoomData>[] = [];

afterEach(async () => {
  await swarmClose();
  for (const s of servers.splice(0)) s.stop(true);
  await stopAll();
});

/** Two rooms of three clients each. */
async function openSwarm(port: number): Promise<void> {
  const opened = await swarmOpen({
    kind: "swarm-open",
    host: "127.0.0.1",
    port,
    rooms: ["swarm-a", "swarm-b"],
    perRoom: 3,
    localAddresses: ["127.0.0.1"],
  });
  expect(opened.failures).toEqual([]);
}

/** Every client of {@link openSwarm}'s sending 40 messages/s for 400 ms. */
async function mixedLoad(port: number): Promise<SwarmMixedResult> {
  await openSwarm(port);
  return swarmMixed({ kind: "swarm-mixed", rate: 40, durationMs: 400, warmupMs: 0, drainMs: 1_000 });
}

describe("the busy-node scenarios' loss and order checks", () => {
  test("a relay that loses nothing: every message reaches its whole room, no failure", async () => {
    const server = relay("none");
    servers.push(server);
    const result = await mixedLoad(server.port as number);
    expect(result.failures).toEqual([]);
    expect(result.sent).toBeGreaterThan(0);
    expect(result.delivered).toBe(result.sent * 3);
  });

  test("scalesocket with cat: no failure", async () => {
    const t = start(["cat"]);
    const result = await mixedLoad(Number(new URL(t.url("x")).port));
    expect(result.failures).toEqual([]);
    expect(result.delivered).toBe(result.sent * 3);
  });

  test("one message lost: reported", async () => {
    const server = relay("drop");
    servers.push(server);
    const result = await mixedLoad(server.port as number);
    expect(result.failures.join("\n")).toContain("(lost or reordered)");
    expect(result.failures.join("\n")).toMatch(/3 of \d+ deliveries missing/);
  });

  test("a room's broadcast line that reaches nobody: reported; the other room's is delivered", async () => {
    for (const fault of ["none", "mute"] as const) {
      const server = relay(fault);
      servers.push(server);
      await openSwarm(server.port as number);
      const result = await swarmBroadcast({ kind: "swarm-broadcast", timeoutMs: 1_000 });
      await swarmClose();
      expect(result.failures).toEqual(fault === "none" ? [] : ["3 of 6 clients never got their room's line"]);
      expect(result.delivered).toBe(fault === "none" ? 6 : 3);
    }
  });

  test("two messages of one sender swapped: reported", async () => {
    const server = relay("reorder");
    servers.push(server);
    const result = await mixedLoad(server.port as number);
    expect(result.failures.join("\n")).toContain("(lost or reordered)");
  });
});
