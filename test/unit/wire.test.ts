import { describe, expect, test } from "bun:test";
import { resolveConfig } from "../../src/cli/index.ts";
import { chooseSubprotocol, wireOptions } from "../../src/wire.ts";

describe("chooseSubprotocol", () => {
  const LIST = ["v2.chat", "v1.chat"];
  const cases: [string, string | null, string | null][] = [
    ["no header: admitted without one", null, ""],
    ["an empty header: admitted without one", " ", ""],
    ["the server's order wins over the client's", "v1.chat, v2.chat", "v2.chat"],
    ["the only one the client offers that the server speaks", "mqtt,v1.chat", "v1.chat"],
    ["blanks around entries", "  v1.chat  ", "v1.chat"],
    ["names are matched exactly", "V2.CHAT", null],
    ["only others", "mqtt, graphql-ws", null],
  ];
  test.each(cases)("%s", (_name, offered, expected) => {
    const choice = chooseSubprotocol(offered, LIST);
    if (expected === null) {
      expect(choice).toEqual({
        kind: "refuse",
        reason: "unsupported subprotocol; this server speaks v2.chat, v1.chat",
      });
    } else {
      expect(choice).toEqual({ kind: "ok", protocol: expected });
    }
  });
});

describe("wireOptions", () => {
  const options = (argv: string[]) => wireOptions(resolveConfig([...argv, "cat"]));
  test("defaults: no compression, Bun's 120 s and its pings", () => {
    expect(options([])).toEqual({ perMessageDeflate: false, idleTimeout: 120, sendPings: true });
  });
  test("--deflate and --idletimeout go to Bun as they are", () => {
    expect(options(["--deflate", "--idletimeout", "0"])).toEqual({
      perMessageDeflate: true,
      idleTimeout: 0,
      sendPings: true,
    });
  });
  test("--pingms: Bun's pings off, its timer a backstop at twice the timeout, at most 960 s", () => {
    expect(options(["--idletimeout", "30", "--pingms", "5000"])).toMatchObject({
      idleTimeout: 60,
      sendPings: false,
    });
    expect(options(["--idletimeout", "900", "--pingms", "5000"])).toMatchObject({ idleTimeout: 960 });
    expect(options(["--idletimeout", "0", "--pingms", "5000"])).toMatchObject({ idleTimeout: 0 });
  });
});
