import { describe, expect, test } from "bun:test";
import { resolveConfig } from "../../../src/cli/index.ts";
import type { Config } from "../../../src/config.ts";
import type { Connection } from "../../../src/env.ts";
import { binaryFraming } from "../../../src/framing/binary.ts";
import type { RoomOutput } from "../../../src/framing/framing.ts";
import { encodeFrame, FrameType, gwsocketFraming } from "../../../src/framing/gwsocket.ts";
import { framingFor } from "../../../src/framing/index.ts";
import { jsonFraming } from "../../../src/framing/json.ts";
import { linesFraming } from "../../../src/framing/lines.ts";

/** What a framing's reader did with the child's output, in order. */
function recorder(members: number[] = [1, 2]) {
  const events: string[] = [];
  const show = (m: string | Uint8Array) => (typeof m === "string" ? m : `bytes:${Buffer.from(m).toString()}`);
  const room: RoomOutput = {
    broadcast: (m, tagged) => void events.push(`all${tagged ? "+cache" : ""} ${show(m)}`),
    sendTo: (id, m) => void events.push(`to ${id} ${show(m)}`),
    setMetadata: (meta) => void events.push(`meta ${JSON.stringify(meta)}`),
    dropped: (warning) => void events.push(`dropped ${warning}`),
    has: (id) => members.includes(id),
  };
  return { room, events };
}

const conn: Connection = {
  id: 7,
  room: "lobby",
  query: "name=ann",
  remoteIp: "127.0.0.1",
  remotePort: 5000,
  pathInfo: "",
  scriptName: "/lobby",
  protocol: "",
  headers: new Headers(),
  user: null,
};

const bytes = (s: string) => new TextEncoder().encode(s);
const cfg = (argv: string[]): Config => resolveConfig([...argv, "cat"]);

describe("plain lines", () => {
  test("a client message is one line; a binary frame too, as its bytes", () => {
    const f = linesFraming(cfg([]));
    expect(f.toChild("hi", 1)).toBe("hi\n");
    expect(Buffer.from(f.toChild(Buffer.from("b"), 1) as Uint8Array).toString()).toBe("b\n");
    expect(f.overhead).toBe(1);
    expect(f.addressed).toBe(false);
  });

  test("join and leave notices come from the templates, one line each; none without them", () => {
    const f = linesFraming(cfg(["--joinmsg", "in #ID #QUERY_NAME", "--leavemsg", "out #ID"]));
    expect(f.joined(conn)).toBe("in 7 ann\n");
    expect(f.left(conn)).toBe("out 7\n");
    const bare = linesFraming(cfg([]));
    expect(bare.joined(conn)).toBeNull();
    expect(bare.left(conn)).toBeNull();
  });

  test("the reader broadcasts each line as it is; with --cache=tagged it marks `_cache` lines", () => {
    const { room, events } = recorder();
    const reader = linesFraming(cfg(["--cache", "tagged:8"])).reader(room);
    reader.push(bytes('plain\n{"_cache":true,"a":1}\n{"_to":1}\r\npart'));
    reader.end();
    expect(events).toEqual(["all plain", 'all+cache {"_cache":true,"a":1}', 'all {"_to":1}', "all part"]);
  });

  test("a line longer than --maxbuffer is dropped with a warning", () => {
    const { room, events } = recorder();
    const reader = linesFraming(cfg(["--maxbuffer", "1K"])).reader(room);
    reader.push(bytes(`${"a".repeat(2000)}\nok\n`));
    expect(events).toEqual([
      "dropped dropped a child message of more than 2000 bytes (limit 1024)",
      "all ok",
    ]);
  });
});

describe("binary", () => {
  test("client bytes go to the child untouched; the reader sends chunks, or pieces between delimiters", () => {
    const f = binaryFraming(cfg(["--binary"]));
    const message = Buffer.from([0, 1, 2]);
    expect(f.toChild(message, 1)).toBe(message);
    expect(f.overhead).toBe(0);
    const chunks = recorder();
    f.reader(chunks.room).push(bytes("a\nb"));
    expect(chunks.events).toEqual(["all bytes:a\nb"]);
    const split = recorder();
    const reader = binaryFraming(cfg(["--binary", "--null"])).reader(split.room);
    reader.push(bytes("a\0b"));
    reader.end();
    expect(split.events).toEqual(["all bytes:a", "all bytes:b"]);
  });
});

describe("JSON", () => {
  const f = jsonFraming(cfg(["--json"]));

  test("a client object is stamped with its sender; anything else is refused", () => {
    expect(f.toChild('{"t":"move"}', 3)).toBe('{"_from":3,"t":"move"}\n');
    expect(f.toChild(Buffer.from('{"_from":9}'), 3)).toBe('{"_from":3}\n');
    expect(f.toChild("[1]", 3)).toBeNull();
    expect(f.toChild("not json", 3)).toBeNull();
    expect(f.refusal).toBe("a JSON object");
    expect(f.joined(conn)).toBe('{"t":"Join","_from":7}\n');
    expect(f.left(conn)).toBe('{"t":"Leave","_from":7}\n');
  });

  test("the largest stamp fits the declared overhead", () => {
    const stamped = f.toChild('{"a":1}', 0xffff_ffff) as string;
    expect(Buffer.byteLength(stamped) - '{"a":1}'.length).toBe(f.overhead);
  });

  test("the reader routes: _to to one client, _meta to the metadata, _cache tagged, the rest broadcast", () => {
    const { room, events } = recorder();
    const reader = f.reader(room);
    reader.push(bytes('{"_to":2,"x":1}\n{"_meta":true,"n":3}\n{"_cache":true}\n{"a":1}\n'));
    expect(events).toEqual([
      'to 2 {"_to":2,"x":1}',
      'meta {"n":3}',
      'all+cache {"_cache":true}',
      'all {"a":1}',
    ]);
    expect(f.addressed).toBe(true);
  });
});

describe("gwsocket", () => {
  const f = gwsocketFraming(cfg(["--frame=gwsocket"]));

  test("client messages, arrivals and departures are frames with the sender's ID", () => {
    expect(f.toChild("hi", 4)).toEqual(encodeFrame(4, FrameType.text, "hi"));
    expect(f.toChild(Buffer.from([9]), 4)).toEqual(encodeFrame(4, FrameType.binary, new Uint8Array([9])));
    expect(f.joined(conn)).toEqual(encodeFrame(7, FrameType.open, "127.0.0.1:5000"));
    expect(f.left(conn)).toEqual(encodeFrame(7, FrameType.close, new Uint8Array(0)));
    expect(f.overhead).toBe(12);
  });

  test("the reader broadcasts ID 0 and sends the others to their client, text as text", () => {
    const { room, events } = recorder();
    const reader = f.reader(room);
    reader.push(encodeFrame(0, FrameType.text, "all"));
    reader.push(encodeFrame(2, FrameType.binary, bytes("two")));
    expect(events).toEqual(["all all", "to 2 bytes:two"]);
  });
});

describe("framingFor", () => {
  test("each direction takes its own mode; the plain mode follows --binary", () => {
    const mixed = framingFor(cfg(["--clientframe=json"]));
    expect(mixed.client.overhead).toBe(jsonFraming(cfg([])).overhead);
    expect(mixed.server.addressed).toBe(false);
    const gw = framingFor(cfg(["--binary", "--serverframe=gwsocket"]));
    expect(gw.client.overhead).toBe(0);
    expect(gw.server.addressed).toBe(true);
  });
});
