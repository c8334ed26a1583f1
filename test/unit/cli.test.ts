import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { helpText, prescan, resolveCli, resolveConfig, USAGE } from "../../src/cli/index.ts";
import { closest, editDistance, flagHint } from "../../src/cli/suggest.ts";
import type { Config } from "../../src/config.ts";
import { usageError } from "../helpers.ts";

const DIR = realpathSync(mkdtempSync(join(tmpdir(), "scalesocket-cli-")));
const FILE = join(DIR, "file.txt");
writeFileSync(FILE, "x");
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

/** Every long flag of SPEC section 2 (plus this project's own), as `--help` must list them. */
const EVERY_FLAG = [
  "addr",
  "binary",
  "cache",
  "cachepersist",
  "delay",
  "delimiters",
  "null",
  "frame",
  "clientframe",
  "serverframe",
  "json",
  "joinmsg",
  "leavemsg",
  "log",
  "metrics",
  "api",
  "oneshot",
  "passenv",
  "rooms",
  "maxrooms",
  "maxclients",
  "maxperip",
  "maxmessage",
  "ratelimit",
  "maxqueued",
  "staticdir",
  "tcp",
  "tcpports",
  "maxbuffer",
  "grace",
  "tlscert",
  "tlskey",
  "origin",
  "jwtsecret",
  "jwtkey",
  "authurl",
  "trustproxy",
  "deflate",
  "subprotocol",
  "idletimeout",
  "pingms",
  "passstderr",
  "pty",
  "ptysize",
] as const;

describe("defaults", () => {
  test("a bare command gets every default of SPEC section 2", () => {
    expect(resolveConfig(["cat"])).toEqual({
      cmd: "cat",
      args: [],
      hostname: "0.0.0.0",
      port: 9000,
      unixPath: null,
      deflate: false,
      subprotocols: null,
      idleTimeout: 120,
      pingMs: null,
      binary: false,
      cache: null,
      cachePersist: false,
      delay: null,
      delimiters: null,
      clientFrame: null,
      serverFrame: null,
      joinMsg: null,
      leaveMsg: null,
      log: "text",
      metrics: false,
      api: false,
      oneshot: false,
      passEnv: ["PATH", "DYLD_LIBRARY_PATH"],
      rooms: null,
      maxRooms: 1024,
      maxClients: null,
      maxPerIp: null,
      maxMessage: 1024 * 1024,
      rateLimit: null,
      maxQueued: 512 * 1024 * 1024,
      crashBackoff: { windowMs: 1000, streak: 3, firstMs: 1000, maxMs: 60_000 },
      staticDir: null,
      devConsole: false,
      tcp: false,
      pty: null,
      passStderr: false,
      tcpPorts: [9001, 9999],
      verbosity: 0,
      maxBuffer: 4 * 1024 * 1024,
      graceMs: 2000,
      tcpTimeoutMs: 10_000,
      origins: null,
      auth: null,
      authTimeoutMs: 5000,
      tls: null,
      trustProxy: null,
      osPipes: true,
      cluster: null,
      drainMs: null,
    } satisfies Config);
  });
});

describe("accepted command lines", () => {
  const JOIN = '{"t":"Join","_from":#ID}';
  const LEAVE = '{"t":"Leave","_from":#ID}';
  const cases: [string, string[], Partial<Config>][] = [
    ["arguments after -- go to the command", ["head", "--", "-n", "1"], { cmd: "head", args: ["-n", "1"] }],
    [
      "--help after -- belongs to the command",
      ["cat", "--", "--help", "-V", "--bogus"],
      { cmd: "cat", args: ["--help", "-V", "--bogus"] },
    ],
    ["a second -- is an argument", ["cat", "--", "--", "x"], { args: ["--", "x"] }],
    ["flags after the command", ["cat", "--oneshot"], { cmd: "cat", oneshot: true }],
    ["--devconsole", ["--devconsole", "cat"], { devConsole: true, staticDir: null }],
    ["a command that looks like a number", ["123"], { cmd: "123" }],
    [
      "bare --frame does not take the next word",
      ["--frame", "head", "--", "-n", "1"],
      { clientFrame: "json", serverFrame: "json", cmd: "head", args: ["-n", "1"] },
    ],
    ["--frame at the end", ["cat", "--frame"], { clientFrame: "json", serverFrame: "json" }],
    ["--frame=json", ["--frame=json", "cat"], { clientFrame: "json", serverFrame: "json", joinMsg: null }],
    ["--clientframe=json alone", ["--clientframe=json", "cat"], { clientFrame: "json", serverFrame: null }],
    [
      "--serverframe json alone",
      ["--serverframe", "json", "cat"],
      { clientFrame: null, serverFrame: "json" },
    ],
    [
      "--clientframe and --serverframe together",
      ["--clientframe=json", "--serverframe=json", "cat"],
      { clientFrame: "json", serverFrame: "json" },
    ],
    [
      "--json sets framing and default join/leave messages",
      ["--json", "cat"],
      { clientFrame: "json", serverFrame: "json", joinMsg: JOIN, leaveMsg: LEAVE },
    ],
    [
      "--json with an explicit --joinmsg: the explicit one wins",
      ["--json", "--joinmsg", "hello #ID", "cat"],
      { joinMsg: "hello #ID", leaveMsg: LEAVE },
    ],
    [
      "--json with an explicit --leavemsg given first",
      ["--leavemsg=bye", "--json", "cat"],
      { joinMsg: JOIN, leaveMsg: "bye" },
    ],
    ["--json with --frame=json agrees", ["--json", "--frame=json", "cat"], { clientFrame: "json" }],
    [
      "--json with --clientframe=json agrees",
      ["--json", "--clientframe=json", "cat"],
      { serverFrame: "json" },
    ],
    [
      "--joinmsg without --json",
      ["--joinmsg", '{"id":#ID}', "cat"],
      { joinMsg: '{"id":#ID}', leaveMsg: null },
    ],
    ["a value containing =", ["--joinmsg", "a=b=c", "cat"], { joinMsg: "a=b=c" }],
    ["an = value containing =", ["--joinmsg=a=b", "cat"], { joinMsg: "a=b" }],
    [
      "a value that looks like a flag",
      ["--joinmsg", "--oneshot", "cat"],
      { joinMsg: "--oneshot", oneshot: false },
    ],
    ["a value that looks like a boolean", ["--leavemsg=true", "cat"], { leaveMsg: "true" }],
    ["an empty --joinmsg=", ["--joinmsg=", "cat"], { joinMsg: "" }],
    ["--passenv= passes nothing", ["--passenv=", "cat"], { passEnv: [] }],
    ["--passenv with an empty next word", ["--passenv", "", "cat"], { passEnv: [] }],
    [
      "--passenv keeps globs",
      ["--passenv", "HOME,LC_*, TERM ,", "cat"],
      { passEnv: ["HOME", "LC_*", "TERM"] },
    ],
    ["--addr host:port", ["--addr", "127.0.0.1:8080", "cat"], { hostname: "127.0.0.1", port: 8080 }],
    ["--addr=[v6]:port", ["--addr=[::1]:0", "cat"], { hostname: "::1", port: 0 }],
    ["--addr :port binds every interface", ["--addr", ":1234", "cat"], { hostname: "0.0.0.0", port: 1234 }],
    ["--addr localhost", ["--addr", "localhost:65535", "cat"], { hostname: "localhost", port: 65535 }],
    ["--log json", ["--log", "json", "cat"], { log: "json" }],
    ["--log=text", ["--log=text", "cat"], { log: "text" }],
    ["--oneshot", ["--oneshot", "cat"], { oneshot: true }],
    ["-v", ["-v", "cat"], { verbosity: 1 }],
    ["-vv", ["-vv", "cat"], { verbosity: 2 }],
    ["-v -v", ["-v", "cat", "-v"], { verbosity: 2 }],
    ["--maxbuffer 512K", ["--maxbuffer", "512K", "cat"], { maxBuffer: 512 * 1024 }],
    ["--maxbuffer=1m lower case", ["--maxbuffer=1m", "cat"], { maxBuffer: 1024 * 1024 }],
    ["--maxbuffer 2MiB", ["--maxbuffer", "2MiB", "cat"], { maxBuffer: 2 * 1024 * 1024 }],
    ["--maxbuffer 1G", ["--maxbuffer", "1G", "cat"], { maxBuffer: 1024 ** 3 }],
    ["--maxbuffer in bytes", ["--maxbuffer", "1024", "cat"], { maxBuffer: 1024 }],
    ["--grace 0.5", ["--grace", "0.5", "cat"], { graceMs: 500 }],
    ["--grace=0", ["--grace=0", "cat"], { graceMs: 0 }],
    ["--grace 10", ["--grace", "10", "cat"], { graceMs: 10_000 }],
    ["--tcpports 2000:2000", ["--tcpports", "2000:2000", "cat"], { tcpPorts: [2000, 2000] }],
    ["--staticdir", ["--staticdir", DIR, "cat"], { staticDir: DIR }],
    ["-- right after the command with nothing after it", ["cat", "--"], { cmd: "cat", args: [] }],
    ["a command named like a framing mode", ["--frame=json", "json"], { cmd: "json", clientFrame: "json" }],
    ["a framing mode as a command, framing bare", ["--frame", "./json"], { cmd: "./json" }],
  ];
  test.each(cases)("%s", (_name, argv, expected) => {
    const action = resolveCli(argv);
    expect(action.kind).toBe("serve");
    if (action.kind === "serve") expect(action.config).toMatchObject(expected);
    expect(resolveConfig(argv)).toMatchObject(expected);
  });

  test("--staticdir is resolved to a real absolute path", () => {
    const config = resolveConfig([
      "--staticdir",
      join(DIR, ".", "..", DIR.split("/").pop() as string),
      "cat",
    ]);
    expect(config.staticDir).toBe(DIR);
  });
});

describe("help and version", () => {
  const cases: [string[], "help" | "version"][] = [
    [["--help"], "help"],
    [["-h"], "help"],
    [["cat", "--help"], "help"],
    [["--help", "cat", "extra"], "help"],
    [["--version"], "version"],
    [["-V"], "version"],
    [["cat", "-V"], "version"],
  ];
  test.each(cases)("%j is %s", (argv, kind) => {
    expect(resolveCli(argv).kind).toBe(kind);
  });

  test("--help wins over --version and needs no command", () => {
    expect(resolveCli(["-V", "-h"]).kind).toBe("help");
  });

  test("helpText lists every flag, the defaults and the usage line", () => {
    const text = helpText();
    const flags = [...EVERY_FLAG, "help", "version"];
    for (const flag of flags) expect(text).toMatch(new RegExp(`--${flag}\\b`));
    for (const short of ["-b, --binary", "-h, --help", "-V, --version"]) expect(text).toContain(short);
    // `-v` has no long form, so help must not show one.
    expect(text).toMatch(/(^|\s)-v\s/m);
    expect(text).not.toMatch(/--v\b(?!e)/);
    for (const value of ["0.0.0.0:9000", "PATH,DYLD_LIBRARY_PATH", "text", "4M", "9001:9999", "2"]) {
      expect(text).toContain(value);
    }
    expect(text.split("\n").filter((line) => line.includes("Usage:"))).toEqual([USAGE]);
  });
});

describe("prescan", () => {
  const cases: [string, string[], Partial<ReturnType<typeof prescan>>][] = [
    ["positionals pass through", ["cat"], { argv: ["cat"], trailing: [], verbosity: 0 }],
    ["a lone - is a positional", ["-"], { argv: ["-"] }],
    ["bare --frame becomes --frame=json", ["--frame", "head"], { argv: ["--frame=json", "head"] }],
    ["--frame=gwsocket is kept", ["--frame=gwsocket"], { argv: ["--frame=gwsocket"] }],
    ["a value is joined with =", ["--addr", "1.2.3.4:5"], { argv: ["--addr=1.2.3.4:5"] }],
    ["an empty = value is kept", ["--passenv="], { argv: ["--passenv="] }],
    ["-vv counts", ["-vv", "-v"], { argv: [], verbosity: 3 }],
    ["-v groups with other switches", ["-bv"], { argv: ["--binary"], verbosity: 1 }],
    ["-b becomes --binary", ["-b"], { argv: ["--binary"] }],
    ["old --cmd-attach-delay", ["--cmd-attach-delay", "3"], { argv: ["--delay=3"] }],
    ["old --stats", ["--stats"], { argv: ["--api"] }],
    ["old --maxforks", ["--maxforks=4"], { argv: ["--maxrooms=4"] }],
    ["-h sets help", ["-h"], { help: true, argv: [] }],
    ["-V sets version", ["-V"], { version: true, argv: [] }],
    ["a mode after a bare --frame is noted", ["--frame", "json", "cat"], { misreadFrameMode: "json" }],
    [
      "nothing after -- is scanned",
      ["cat", "--", "-vv", "--help", "--bogus"],
      { argv: ["cat"], trailing: ["-vv", "--help", "--bogus"], verbosity: 0, help: false },
    ],
  ];
  test.each(cases)("%s", (_name, argv, expected) => {
    expect(prescan(argv)).toMatchObject(expected);
  });

  test("only a framing mode right after a bare --frame is noted as misread", () => {
    for (const argv of [
      ["--frame=json", "json"],
      ["--frame", "head"],
      ["json", "--frame"],
      ["--frame", "--", "json"],
    ]) {
      expect(prescan(argv).misreadFrameMode).toBeUndefined();
    }
  });
});

describe("rejected command lines", () => {
  const cases: [string, string[], RegExp][] = [
    ["no command", [], /missing <CMD>/],
    ["only flags", ["--oneshot"], /missing <CMD>/],
    ["the command only after --", ["--", "cat"], /missing <CMD>/],
    ["an extra positional", ["cat", "file"], /unexpected argument 'file'.*after --/],
    ["an unknown flag", ["--bogus", "cat"], /unknown flag --bogus/],
    ["an unknown flag with a value", ["--bogus=1", "cat"], /unknown flag --bogus/],
    ["an unknown short flag", ["-x", "cat"], /unknown flag -x/],
    ["an unknown short flag in a group", ["-bx", "cat"], /unknown flag -x/],
    ["a number as a flag", ["-1", "cat"], /unknown flag -1/],
    ["--v is not a flag", ["--v", "cat"], /unknown flag --v/],
    ["--cmd is not a flag", ["--cmd", "cat"], /unknown flag --cmd/],
    ["--no- negation is not a flag", ["--no-oneshot", "cat"], /unknown flag --no-oneshot/],
    ["--verbose is not a flag", ["--verbose", "cat"], /unknown flag --verbose/],
    ["a value given to a switch", ["--oneshot=1", "cat"], /--oneshot takes no value/],
    ["a value given to --json", ["--json=yes", "cat"], /--json takes no value/],
    ["a value given to --help", ["--help=1"], /--help takes no value/],
    ["a value given to an old switch name", ["--stats=1", "cat"], /--stats takes no value/],
    ["--addr without a value", ["cat", "--addr"], /--addr needs a value <ADDR>/],
    ["--joinmsg without a value", ["cat", "--joinmsg"], /--joinmsg needs a value <MSG>/],
    ["--passenv without a value", ["cat", "--passenv"], /--passenv needs a value <LIST>/],
    ["--addr without a port", ["--addr", "127.0.0.1", "cat"], /invalid value '127.0.0.1' for --addr/],
    ["--addr with an empty port", ["--addr", "127.0.0.1:", "cat"], /invalid value .* for --addr/],
    ["--addr port too large", ["--addr", "0.0.0.0:65536", "cat"], /invalid value .* for --addr/],
    ["--addr port not a number", ["--addr", "0.0.0.0:http", "cat"], /invalid value .* for --addr/],
    ["--addr v6 without brackets", ["--addr", "::1:80", "cat"], /invalid value .* for --addr/],
    ["--addr empty", ["--addr=", "cat"], /invalid value '' for --addr/],
    ["--log bogus", ["--log", "xml", "cat"], /invalid value 'xml' for --log: expected text or json/],
    ["--log is case-sensitive", ["--log", "JSON", "cat"], /invalid value 'JSON' for --log/],
    ["--frame=bogus", ["--frame=binary", "cat"], /invalid value 'binary' for --frame/],
    ["--frame= empty", ["--frame=", "cat"], /invalid value '' for --frame/],
    ["--clientframe bogus", ["--clientframe=xml", "cat"], /invalid value 'xml' for --clientframe/],
    ["--serverframe bogus", ["--serverframe", "xml", "cat"], /invalid value 'xml' for --serverframe/],
    [
      "--frame with --clientframe",
      ["--frame", "--clientframe=json", "cat"],
      /--frame conflicts with --clientframe/,
    ],
    [
      "--frame with --serverframe",
      ["--serverframe=json", "--frame=json", "cat"],
      /--frame conflicts with --serverframe/,
    ],
    [
      "--json with --frame=gwsocket",
      ["--json", "--frame=gwsocket", "cat"],
      /--json conflicts with --frame=gwsocket/,
    ],
    [
      "--json with gwsocket one way",
      ["--json", "--serverframe=gwsocket", "cat"],
      /--json conflicts with gwsocket/,
    ],
    ["--maxbuffer bogus", ["--maxbuffer", "lots", "cat"], /invalid value 'lots' for --maxbuffer/],
    ["--maxbuffer below 1K", ["--maxbuffer", "1023", "cat"], /invalid value '1023' for --maxbuffer/],
    ["--maxbuffer zero", ["--maxbuffer=0", "cat"], /invalid value '0' for --maxbuffer/],
    ["--maxbuffer above 1T", ["--maxbuffer", "2048G", "cat"], /invalid value '2048G' for --maxbuffer/],
    ["--maxbuffer negative", ["--maxbuffer=-4M", "cat"], /invalid value '-4M' for --maxbuffer/],
    ["--maxbuffer unknown unit", ["--maxbuffer", "4T", "cat"], /invalid value '4T' for --maxbuffer/],
    ["--grace negative", ["--grace=-1", "cat"], /invalid value '-1' for --grace/],
    ["--grace not a number", ["--grace", "soon", "cat"], /invalid value 'soon' for --grace/],
    ["--grace empty", ["--grace=", "cat"], /invalid value '' for --grace/],
    ["--grace too long", ["--grace", "86401", "cat"], /invalid value '86401' for --grace/],
    ["--grace in hex", ["--grace", "0x10", "cat"], /invalid value '0x10' for --grace/],
    ["--grace with an exponent", ["--grace", "1e3", "cat"], /invalid value '1e3' for --grace/],
    ["--grace with spaces", ["--grace", " 2", "cat"], /invalid value ' 2' for --grace/],
    ["--grace Infinity", ["--grace", "Infinity", "cat"], /invalid value 'Infinity' for --grace/],
    ["--tcpports one number", ["--tcpports", "9000", "cat"], /invalid value '9000' for --tcpports/],
    ["--tcpports reversed", ["--tcpports", "9999:9001", "cat"], /invalid value '9999:9001' for --tcpports/],
    ["--tcpports from 0", ["--tcpports", "0:10", "cat"], /invalid value '0:10' for --tcpports/],
    [
      "--tcpports past 65535",
      ["--tcpports", "9000:65536", "cat"],
      /invalid value '9000:65536' for --tcpports/,
    ],
    ["--tcpports bogus", ["--tcpports=a:b", "cat"], /invalid value 'a:b' for --tcpports/],
    [
      "--staticdir nonexistent",
      ["--staticdir", join(DIR, "nope"), "cat"],
      /--staticdir '.*nope' is not a directory/,
    ],
    ["--staticdir a file", ["--staticdir", FILE, "cat"], /--staticdir '.*file\.txt' is not a directory/],
    [
      "--staticdir below a file",
      ["--staticdir", join(FILE, "sub"), "cat"],
      /--staticdir '.*sub' is not a directory/,
    ],
    ["--staticdir empty", ["--staticdir=", "cat"], /--staticdir needs a directory/],
    // Values are validated before a flag is refused as not built yet.
    ["--cache bogus", ["--cache=bogus", "cat"], /invalid value 'bogus' for --cache/],
    ["--cache bad size", ["--cache", "all:2", "cat"], /invalid value 'all:2' for --cache/],
    ["--cache bad type", ["--cache", "some:8", "cat"], /invalid value 'some:8' for --cache/],
    ["--delay bogus", ["--delay", "soon", "cat"], /invalid value 'soon' for --delay/],
    ["--cmd-attach-delay bogus", ["--cmd-attach-delay=-1", "cat"], /invalid value '-1' for --delay/],
    ["--maxrooms bogus", ["--maxrooms", "many", "cat"], /invalid value 'many' for --maxrooms/],
    ["--maxrooms negative", ["--maxrooms=-1", "cat"], /invalid value '-1' for --maxrooms/],
    ["--maxclients zero", ["--maxclients", "0", "cat"], /invalid value '0' for --maxclients/],
    ["--maxperip bogus", ["--maxperip", "x", "cat"], /invalid value 'x' for --maxperip/],
    ["--ratelimit zero", ["--ratelimit", "0", "cat"], /invalid value '0' for --ratelimit/],
    ["--maxmessage too small", ["--maxmessage", "10", "cat"], /invalid value '10' for --maxmessage/],
    ["--maxqueued bogus", ["--maxqueued", "lots", "cat"], /invalid value 'lots' for --maxqueued/],
    ["--rooms empty", ["--rooms=", "cat"], /--rooms needs at least one entry/],
    ["--rooms only commas", ["--rooms", ",,", "cat"], /--rooms needs at least one entry/],
    ["--delimiters empty", ["--delimiters=", "cat"], /--delimiters needs at least one character/],
    ["--delimiters with --null", ["--delimiters=;", "--null", "cat"], /--delimiters conflicts with --null/],
  ];
  test.each(cases)("%s", (_name, argv, pattern) => {
    expect(usageError(argv)).toMatch(pattern);
  });

  test("an error names the flag and never leaks a stack or raw errno", () => {
    for (const [, argv] of cases) expect(usageError(argv)).not.toMatch(/ENOENT|ENOTDIR|at .*\.ts/);
  });
});

describe("hints for a mistyped or foreign flag", () => {
  const cases: [string, string | undefined][] = [
    ["port", "did you mean --addr :PORT?"],
    ["listen", "did you mean --addr HOST:PORT?"],
    ["static", "did you mean --staticdir?"],
    ["verbose", "did you mean -v?"],
    ["verbos", "did you mean -v?"],
    ["max-rooms", "did you mean --maxrooms?"],
    ["MAX_BUFFER", "did you mean --maxbuffer?"],
    ["cache-persist", "did you mean --cachepersist?"],
    ["max-forks", "did you mean --maxrooms?"],
    ["cmd-attach-dealy", "did you mean --delay?"],
    ["stat", "did you mean --api?"],
    ["adr", "did you mean --addr?"],
    ["tcpport", "did you mean --tcpports?"],
    ["passenvs", "did you mean --passenv?"],
    ["v", "did you mean -v?"],
    ["b", "did you mean -b?"],
    ["no-json", "a switch is off unless given"],
    ["no-null", "a switch is off unless given"],
    ["no-addr", "did you mean --addr?"],
    ["command", "the command is written without a flag, before --"],
    ["bogus", undefined],
    ["x", undefined],
    ["frobnicate", undefined],
  ];
  test.each(cases)("--%s: %p", (given, hint) => {
    expect(flagHint(given)).toBe(hint);
  });

  const distances: [string, string, number][] = [
    ["", "", 0],
    ["addr", "addr", 0],
    ["", "abc", 3],
    ["adr", "addr", 1],
    ["jsno", "json", 1],
    ["kitten", "sitting", 3],
    ["ca", "abc", 3],
  ];
  test.each(distances)("edit distance %p to %p is %d", (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });

  test("closest allows one edit below six letters and two from six, and ties go to the first", () => {
    expect(closest("jsn", ["json", "text"])).toBe("json");
    expect(closest("js", ["json"])).toBeUndefined();
    expect(closest("onsht", ["oneshot"])).toBeUndefined();
    expect(closest("oneshto", ["oneshot"])).toBe("oneshot");
    expect(closest("staticdri", ["staticdir"])).toBe("staticdir");
    expect(closest("ab", ["ac", "ad"])).toBe("ac");
  });

  test("a mistyped command-line error keeps the old message as its prefix", () => {
    expect(usageError(["--verbose", "cat"])).toBe("unknown flag --verbose (did you mean -v?)");
    expect(usageError(["--frame", "json", "cat"])).toStartWith("unexpected argument 'cat' (");
    expect(usageError(["--frame", "json", "cat"])).toContain(
      "a bare --frame takes no value: write --frame=json",
    );
    expect(usageError(["--frame", "json"])).toStartWith("missing <CMD>");
  });
});

describe("room operation flags", () => {
  const cases: [string, string[], Partial<Config>][] = [
    ["--cache 8", ["--cache", "8", "cat"], { cache: { type: "all", size: 8 } }],
    ["--cache=tagged:64", ["--cache=tagged:64", "cat"], { cache: { type: "tagged", size: 64 } }],
    ["--cache all:1", ["--cache", "all:1", "cat"], { cache: { type: "all", size: 1 } }],
    ["--cachepersist", ["--cache", "1", "--cachepersist", "cat"], { cachePersist: true }],
    ["--metrics", ["--metrics", "cat"], { metrics: true }],
    ["--api", ["--api", "cat"], { api: true }],
    ["--stats (old name of --api)", ["--stats", "cat"], { api: true }],
    ["--rooms", ["--rooms", "a, game-*", "cat"], { rooms: ["a", "game-*"] }],
    ["--maxrooms", ["--maxrooms", "4", "cat"], { maxRooms: 4 }],
    ["--maxforks (old name of --maxrooms)", ["--maxforks", "4", "cat"], { maxRooms: 4 }],
    ["--maxrooms 0 is no limit", ["--maxrooms", "0", "cat"], { maxRooms: null }],
    ["--maxforks=0 is no limit", ["--maxforks=0", "cat"], { maxRooms: null }],
    ["--maxclients", ["--maxclients", "100", "cat"], { maxClients: 100 }],
    ["--maxperip", ["--maxperip=3", "cat"], { maxPerIp: 3 }],
    ["--maxmessage", ["--maxmessage", "64K", "cat"], { maxMessage: 64 * 1024 }],
    ["--ratelimit", ["--ratelimit", "20", "cat"], { rateLimit: 20 }],
    ["--maxqueued", ["--maxqueued", "1G", "cat"], { maxQueued: 1024 ** 3 }],
  ];
  test.each(cases)("%s", (_name, argv, expected) => {
    expect(resolveConfig(argv)).toMatchObject(expected);
  });
});

describe("transport flags", () => {
  const cases: [string, string[], Partial<Config>][] = [
    ["--tcp", ["--tcp", "cat"], { tcp: true, delay: 1, tcpPorts: [9001, 9999] }],
    ["--tcp --delay 0.2", ["--tcp", "--delay", "0.2", "cat"], { tcp: true, delay: 0.2 }],
    ["--tcpports", ["--tcp", "--tcpports", "2000:3000", "cat"], { tcpPorts: [2000, 3000] }],
    ["--delay without --tcp", ["--delay", "2", "cat"], { tcp: false, delay: 2 }],
    ["--cmd-attach-delay (old name of --delay)", ["--cmd-attach-delay", "2", "cat"], { delay: 2 }],
    ["--binary", ["--binary", "cat"], { binary: true, delimiters: null }],
    ["-b", ["-b", "cat"], { binary: true }],
    ["--delimiters", ["--delimiters", ";", "cat"], { delimiters: ";" }],
    ["--delimiters=bc", ["--delimiters=bc", "echo", "--", "foobar"], { delimiters: "bc", args: ["foobar"] }],
    ["--null", ["--null", "cat"], { delimiters: "\0" }],
    ["--binary --null", ["--binary", "--null", "cat"], { binary: true, delimiters: "\0" }],
    ["--frame=gwsocket", ["--frame=gwsocket", "cat"], { clientFrame: "gwsocket", serverFrame: "gwsocket" }],
    [
      "--clientframe=gwsocket",
      ["--clientframe=gwsocket", "cat"],
      { clientFrame: "gwsocket", serverFrame: null },
    ],
    [
      "--serverframe=gwsocket",
      ["--serverframe=gwsocket", "cat"],
      { clientFrame: null, serverFrame: "gwsocket" },
    ],
  ];
  test.each(cases)("%s", (_name, argv, expected) => {
    expect(resolveConfig(argv)).toMatchObject(expected);
  });

  const conflicts: [string, string[], string][] = [
    ["--devconsole with --staticdir", ["--devconsole", "--staticdir", "/", "cat"], "--devconsole conflicts"],
    ["non-ASCII delimiters", ["--delimiters", "é", "cat"], "--delimiters"],
    ["--binary with --json", ["--binary", "--json", "cat"], "--binary conflicts with JSON framing"],
    ["--binary with --serverframe=json", ["--binary", "--serverframe=json", "cat"], "--binary conflicts"],
    ["--null with gwsocket", ["--null", "--frame=gwsocket", "cat"], "--null conflicts with gwsocket"],
    [
      "--delimiters with gwsocket",
      ["--delimiters", ";", "--serverframe=gwsocket", "cat"],
      "--delimiters conflicts",
    ],
    [
      "--joinmsg with gwsocket",
      ["--joinmsg", "hi", "--frame=gwsocket", "cat"],
      "--joinmsg conflicts with gwsocket",
    ],
    [
      "--leavemsg with gwsocket",
      ["--leavemsg", "bye", "--clientframe=gwsocket", "cat"],
      "--leavemsg conflicts",
    ],
  ];
  test.each(conflicts)("%s is refused", (_name, argv, message) => {
    expect(usageError(argv)).toContain(message);
  });
});

describe("wire flags", () => {
  const cases: [string, string[], Partial<Config>][] = [
    ["--deflate", ["--deflate", "cat"], { deflate: true }],
    ["--subprotocol", ["--subprotocol", "v2.chat, v1.chat", "cat"], { subprotocols: ["v2.chat", "v1.chat"] }],
    ["--idletimeout 0", ["--idletimeout", "0", "cat"], { idleTimeout: 0, pingMs: null }],
    ["--idletimeout 8", ["--idletimeout=8", "cat"], { idleTimeout: 8 }],
    ["--pingms", ["--pingms", "2500", "cat"], { idleTimeout: 120, pingMs: 2500 }],
    ["--pingms with no idle timeout", ["--idletimeout", "0", "--pingms", "60000", "cat"], { pingMs: 60_000 }],
    [
      "--addr unix:PATH",
      ["--addr", "unix:/tmp/s.sock", "cat"],
      { unixPath: "/tmp/s.sock", hostname: "localhost", port: 0 },
    ],
    ["--addr unix: relative", ["--addr=unix:s.sock", "cat"], { unixPath: `${process.cwd()}/s.sock` }],
    ["--passstderr", ["--passstderr", "cat"], { passStderr: true }],
  ];
  test.each(cases)("%s", (_name, argv, expected) => {
    expect(resolveConfig(argv)).toMatchObject(expected);
  });

  const refused: [string, string[], string][] = [
    ["--idletimeout below Bun's tick", ["--idletimeout", "5", "cat"], "expected seconds, 0 or 8 to 960"],
    ["--idletimeout past Bun's limit", ["--idletimeout", "961", "cat"], "0 or 8 to 960"],
    ["--idletimeout fraction", ["--idletimeout", "8.5", "cat"], "--idletimeout"],
    ["--pingms too small", ["--pingms", "10", "cat"], "expected milliseconds, 100 to 3600000"],
    ["--pingms not below the idle timeout", ["--idletimeout", "8", "--pingms", "8000", "cat"], "shorter"],
    ["--subprotocol empty", ["--subprotocol=", "cat"], "--subprotocol needs at least one entry"],
    ["--subprotocol not a token", ["--subprotocol", "a b", "cat"], "is a token"],
    ["--addr unix: without a path", ["--addr", "unix:", "cat"], "expected unix:PATH"],
    ["--deflate with a value", ["--deflate=1", "cat"], "--deflate takes no value"],
  ];
  test.each(refused)("%s is refused", (_name, argv, message) => {
    expect(usageError(argv)).toContain(message);
  });
});

describe("the real command", () => {
  const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
  function run(...argv: string[]) {
    const proc = Bun.spawnSync([process.execPath, MAIN, ...argv], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" },
      stdin: "ignore",
    });
    return { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
  }

  test("a bad flag: exit 2, the error and the usage line on stderr, nothing on stdout", () => {
    const { code, stdout, stderr } = run("--bogus", "cat");
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(`scalesocket: error: unknown flag --bogus\n${USAGE}\n`);
    expect(stderr.trimEnd().split("\n")).toHaveLength(2);
  });

  test("a missing command: exit 2 with two lines", () => {
    const { code, stderr } = run();
    expect(code).toBe(2);
    const lines = stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain("missing <CMD>");
    expect(lines[1]).toBe("Usage: scalesocket [OPTIONS] <CMD> [-- <ARGS>...]");
  });

  test("a bad --staticdir: exit 2, not a crash", () => {
    const { code, stderr } = run("--staticdir", join(FILE, "sub"), "cat");
    expect(code).toBe(2);
    expect(stderr.trimEnd().split("\n")).toHaveLength(2);
  });

  test("--help: exit 0, every flag and default on stdout, no colour", () => {
    const { code, stdout, stderr } = run("--help");
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).not.toContain("\x1b[");
    for (const flag of EVERY_FLAG) {
      expect(stdout).toMatch(new RegExp(`--${flag}\\b`));
    }
    for (const value of ["0.0.0.0:9000", "PATH,DYLD_LIBRARY_PATH", "9001:9999", "4M"]) {
      expect(stdout).toContain(value);
    }
    expect(stdout).toContain(USAGE);
  });

  test.each([["--version"], ["-V"]])("%s prints the version from package.json", (flag) => {
    const { code, stdout, stderr } = run(flag);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).toBe(`scalesocket ${pkg.version}\n`);
  });
});
