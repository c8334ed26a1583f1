import { describe, expect, test } from "bun:test";
import { resolveConfig } from "../../src/cli/index.ts";
import { usageError } from "../helpers.ts";

const SECRET = "0123456789abcdef0123456789abcdef";
const BASE = [
  "--addr",
  "127.0.0.1:9000",
  "--cluster",
  "redis://:pw@10.0.0.1:6380/2",
  "--clustersecret",
  SECRET,
];

describe("cluster flags", () => {
  test("without --cluster nothing is clustered", () => {
    const c = resolveConfig(["cat"], undefined, {});
    expect(c.cluster).toBeNull();
    expect(c.drainMs).toBeNull();
  });

  test("a full set resolves, with the margin a tenth of the lease", () => {
    const c = resolveConfig(
      [...BASE, "--advertise", "ws://10.0.0.5:9000", "--lease", "4", "--grace", "0.5", "cat"],
      undefined,
      {},
    );
    expect(c.cluster).toEqual({
      url: "redis://:pw@10.0.0.1:6380/2",
      advertise: "ws://10.0.0.5:9000",
      secret: SECRET,
      leaseMs: 4000,
      marginMs: 400,
    });
  });

  test("the advertised address is derived later from a specific --addr", () => {
    expect(resolveConfig([...BASE, "cat"], undefined, {}).cluster?.advertise).toBeNull();
  });

  test("the secret may come from SCALESOCKET_CLUSTERSECRET", () => {
    const argv = ["--addr", "127.0.0.1:9000", "--cluster", "redis://127.0.0.1", "cat"];
    expect(resolveConfig(argv, undefined, { SCALESOCKET_CLUSTERSECRET: SECRET }).cluster?.secret).toBe(
      SECRET,
    );
  });

  test("--drain takes seconds", () => {
    expect(resolveConfig(["--drain", "2.5", "cat"], undefined, {}).drainMs).toBe(2500);
  });

  const cases: [string[], RegExp][] = [
    [["--cluster", "http://x", "--clustersecret", SECRET, "cat"], /expected redis:\/\//],
    [["--cluster", "redis://x/abc", "--clustersecret", SECRET, "cat"], /the db is a number/],
    [["--addr", "127.0.0.1:1", "--cluster", "redis://x", "cat"], /--cluster needs --clustersecret/],
    [["--addr", "127.0.0.1:1", "--cluster", "redis://x", "--clustersecret", "short", "cat"], /too short/],
    [["--cluster", "redis://x", "--clustersecret", SECRET, "cat"], /needs --advertise/],
    [["--advertise", "ws://a:1", "cat"], /--advertise needs --cluster/],
    [["--clustersecret", SECRET, "cat"], /--clustersecret needs --cluster/],
    [["--lease", "3", "cat"], /--lease needs --cluster/],
    [[...BASE, "--advertise", "http://a:1", "cat"], /expected ws:\/\/HOST:PORT/],
    [[...BASE, "--advertise", "ws://a:1/x", "cat"], /no path/],
    [[...BASE, "--lease", "0.5", "cat"], /at least 1 second/],
    [[...BASE, "--lease", "5", "--grace", "2", "cat"], /too short for --grace 2.*--lease 10 or more/],
    [["--drain", "x", "cat"], /--drain/],
  ];
  test.each(cases)("%p is refused", (argv, message) => {
    expect(usageError(argv)).toMatch(message);
  });

  test("a bad --cluster value is not repeated: it may hold a password", () => {
    expect(usageError(["--cluster", "http://:hunter2@x", "--clustersecret", SECRET, "cat"])).not.toContain(
      "hunter2",
    );
  });
});
