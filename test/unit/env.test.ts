import { describe, expect, test } from "bun:test";
import {
  type Connection,
  childEnv,
  expandTemplate,
  passEnvFilter,
  passedEnv,
  remoteAddr,
  type ServerInfo,
} from "../../src/env.ts";

function conn(over: Partial<Connection> = {}): Connection {
  return {
    id: 7,
    room: "lobby",
    query: "",
    remoteIp: "203.0.113.5",
    remotePort: 40000,
    pathInfo: "",
    scriptName: "/lobby",
    protocol: "",
    headers: new Headers(),
    user: null,
    ...over,
  };
}

const SERVER: ServerInfo = { hostname: "0.0.0.0", port: 9000, software: "scalesocket/0.0.0" };

/** The CGI variables childEnv always sets, whatever the connection. */
const CGI_KEYS = [
  "GATEWAY_INTERFACE",
  "REQUEST_METHOD",
  "SERVER_PROTOCOL",
  "SERVER_SOFTWARE",
  "SERVER_NAME",
  "SERVER_PORT",
  "SCRIPT_NAME",
  "PATH_INFO",
  "QUERY_STRING",
  "REMOTE_ADDR",
  "REMOTE_PORT",
  "ROOM",
];

describe("passEnvFilter", () => {
  const cases: [string, string[], string[], string[]][] = [
    [
      "plain names",
      ["PATH", "DYLD_LIBRARY_PATH"],
      ["PATH", "DYLD_LIBRARY_PATH"],
      ["path", "PATHS", "XPATH", "HOME"],
    ],
    ["a prefix glob", ["LC_*"], ["LC_ALL", "LC_CTYPE", "LC_"], ["LANG", "XLC_ALL", "lc_all"]],
    ["a single-character glob", ["X?"], ["XA", "X1"], ["X", "XAB"]],
    ["a brace glob", ["{HOME,USER}"], ["HOME", "USER"], ["SHELL", "HOMES"]],
    ["a character class", ["TERM[0-9]"], ["TERM1"], ["TERM", "TERMX"]],
    ["names and globs together", ["HOME", "LC_*"], ["HOME", "LC_ALL"], ["PATH", "LANG"]],
    ["everything", ["*"], ["PATH", "SECRET", "_", "a"], []],
    ["an empty list passes nothing", [], [], ["PATH", "HOME", "", "LC_ALL"]],
  ];
  test.each(cases)("%s", (_name, entries, passed, refused) => {
    const pass = passEnvFilter(entries);
    for (const name of passed) expect(pass(name)).toBe(true);
    for (const name of refused) expect(pass(name)).toBe(false);
  });
});

describe("remoteAddr", () => {
  const cases: [string, number, string][] = [
    ["127.0.0.1", 5000, "127.0.0.1:5000"],
    ["::1", 5000, "[::1]:5000"],
    ["::ffff:10.0.0.1", 80, "[::ffff:10.0.0.1]:80"],
    ["fe80::1", 0, "[fe80::1]:0"],
  ];
  test.each(cases)("%s port %d → %s", (remoteIp, remotePort, expected) => {
    expect(remoteAddr({ remoteIp, remotePort })).toBe(expected);
  });
});

describe("childEnv", () => {
  const source = {
    PATH: "/usr/bin:/bin",
    HOME: "/home/server",
    SECRET_TOKEN: "hunter2",
    LC_ALL: "C.UTF-8",
    LC_CTYPE: "C",
    LANG: "en",
    UNDEF: undefined,
  };

  test("exactly the passed variables and the CGI set, nothing else", () => {
    const env = childEnv(passedEnv(passEnvFilter(["PATH", "DYLD_LIBRARY_PATH"]), source), conn(), SERVER);
    expect(Object.keys(env).sort()).toEqual(["PATH", ...CGI_KEYS].sort());
    expect(env).toEqual({
      PATH: "/usr/bin:/bin",
      GATEWAY_INTERFACE: "CGI/1.1",
      REQUEST_METHOD: "GET",
      SERVER_PROTOCOL: "HTTP/1.1",
      SERVER_SOFTWARE: "scalesocket/0.0.0",
      SERVER_NAME: "0.0.0.0",
      SERVER_PORT: "9000",
      SCRIPT_NAME: "/lobby",
      PATH_INFO: "",
      QUERY_STRING: "",
      REMOTE_ADDR: "203.0.113.5:40000",
      REMOTE_PORT: "40000",
      ROOM: "lobby",
    });
  });

  test("REMOTE_USER is the admitted user, absent without one", () => {
    expect(childEnv({}, conn({ user: "ann" }), SERVER).REMOTE_USER).toBe("ann");
    expect("REMOTE_USER" in childEnv({}, conn(), SERVER)).toBe(false);
  });

  test("no SCALESOCKET_ variable passes, whatever --passenv says", () => {
    const server = { ...source, SCALESOCKET_JWTSECRET: "s", SCALESOCKET_ORIGIN: "same", SCALESOCKETX: "1" };
    for (const entries of [["*"], ["SCALESOCKET_*"], ["SCALESOCKET_JWTSECRET"]]) {
      const passed = passedEnv(passEnvFilter(entries), server);
      expect(Object.keys(passed).filter((n) => n.startsWith("SCALESOCKET_"))).toEqual([]);
    }
    expect(passedEnv(passEnvFilter(["*"]), server).SCALESOCKETX).toBe("1");
  });

  test("an empty pass list passes nothing of the server's environment", () => {
    const env = childEnv(passedEnv(passEnvFilter([]), source), conn(), SERVER);
    expect(Object.keys(env).sort()).toEqual([...CGI_KEYS].sort());
  });

  test("globs pass every matching variable; undefined values are skipped", () => {
    const env = childEnv(passedEnv(passEnvFilter(["LC_*", "UNDEF"]), source), conn(), SERVER);
    expect(env.LC_ALL).toBe("C.UTF-8");
    expect(env.LC_CTYPE).toBe("C");
    expect("LANG" in env).toBe(false);
    expect("UNDEF" in env).toBe(false);
    expect("SECRET_TOKEN" in env).toBe(false);
  });

  test("the connection's values: query, room, path, IPv6 peer", () => {
    const env = childEnv(
      passedEnv(passEnvFilter([]), source),
      conn({
        room: "a b",
        scriptName: "/a%20b",
        protocol: "",
        pathInfo: "/more/path",
        query: "x=1&y=%22",
        remoteIp: "::1",
        remotePort: 1234,
      }),
      SERVER,
    );
    expect(env).toMatchObject({
      ROOM: "a b",
      SCRIPT_NAME: "/a%20b",
      PATH_INFO: "/more/path",
      QUERY_STRING: "x=1&y=%22",
      REMOTE_ADDR: "[::1]:1234",
      REMOTE_PORT: "1234",
    });
  });

  test("request headers become HTTP_* variables", () => {
    const headers = new Headers({
      Host: "example.com:8080",
      "User-Agent": "test/1.0",
      "Sec-WebSocket-Key": "abc==",
      "X-Forwarded-For": "198.51.100.1",
      Cookie: "a=1",
    });
    const env = childEnv(passedEnv(passEnvFilter(["PATH"]), source), conn({ headers }), SERVER);
    expect(Object.keys(env).sort()).toEqual(
      [
        "PATH",
        ...CGI_KEYS,
        "HTTP_HOST",
        "HTTP_USER_AGENT",
        "HTTP_SEC_WEBSOCKET_KEY",
        "HTTP_X_FORWARDED_FOR",
        "HTTP_COOKIE",
      ].sort(),
    );
    expect(env).toMatchObject({
      HTTP_HOST: "example.com:8080",
      HTTP_USER_AGENT: "test/1.0",
      HTTP_SEC_WEBSOCKET_KEY: "abc==",
      HTTP_X_FORWARDED_FOR: "198.51.100.1",
      HTTP_COOKIE: "a=1",
    });
  });

  test("header names are mapped the same however many distinct ones clients send", () => {
    // More names than the mapping remembers (256): the ones past it are mapped each time, just as well.
    const names = Array.from({ length: 300 }, (_, i) => `X-Custom-${i}`);
    const headers = new Headers(names.map((n, i): [string, string] => [n, String(i)]));
    for (let round = 0; round < 2; round++) {
      const env = childEnv(passedEnv(passEnvFilter([]), {}), conn({ headers }), SERVER);
      expect(env.HTTP_X_CUSTOM_0).toBe("0");
      expect(env.HTTP_X_CUSTOM_299).toBe("299");
      expect(Object.keys(env).filter((k) => k.startsWith("HTTP_X_CUSTOM_"))).toHaveLength(300);
    }
  });

  test("only header names of letters, digits and dashes become HTTP_* variables; others are dropped", () => {
    // Headers sent in this order: the underscore spelling must not overwrite the real header's variable.
    const headers = new Headers([
      ["X-Forwarded-For", "198.51.100.1"],
      ["X_Forwarded_For", "6.6.6.6"],
      ["X.Dot", "1"],
      ["X~Tilde!#", "2"],
      ["X-Ok-9", "3"],
    ]);
    for (let round = 0; round < 2; round++) {
      const env = childEnv(passedEnv(passEnvFilter([]), {}), conn({ headers }), SERVER);
      expect(
        Object.keys(env)
          .filter((k) => k.startsWith("HTTP_"))
          .sort(),
      ).toEqual(["HTTP_X_FORWARDED_FOR", "HTTP_X_OK_9"]);
      expect(env.HTTP_X_FORWARDED_FOR).toBe("198.51.100.1");
    }
  });

  test("a Proxy header does not become HTTP_PROXY (httpoxy)", () => {
    const headers = new Headers({ Proxy: "http://evil.example:3128", Host: "x" });
    const env = childEnv(passedEnv(passEnvFilter([]), source), conn({ headers }), SERVER);
    expect("HTTP_PROXY" in env).toBe(false);
    expect(env.HTTP_HOST).toBe("x");
  });

  const hosts: [string, string][] = [
    ["example.com:8080", "example.com"],
    ["example.com", "example.com"],
    ["[::1]:9000", "[::1]"],
    ["[::1]", "[::1]"],
    ["127.0.0.1:9000", "127.0.0.1"],
  ];
  test.each(hosts)("SERVER_NAME from Host %s is %s", (host, name) => {
    const env = childEnv(passedEnv(passEnvFilter([]), {}), conn({ headers: new Headers({ host }) }), SERVER);
    expect(env.SERVER_NAME).toBe(name);
    expect(env.SERVER_PORT).toBe("9000");
  });

  test("CGI variables override passed variables of the same name", () => {
    const env = childEnv(
      passedEnv(passEnvFilter(["*"]), { ROOM: "server", QUERY_STRING: "server" }),
      conn(),
      SERVER,
    );
    expect(env.ROOM).toBe("lobby");
    expect(env.QUERY_STRING).toBe("");
  });

  test("WEBSOCKET_PROTOCOL is the chosen subprotocol, and absent when none was", () => {
    expect(childEnv({}, conn({ protocol: "mqtt" }), SERVER).WEBSOCKET_PROTOCOL).toBe("mqtt");
    expect("WEBSOCKET_PROTOCOL" in childEnv({}, conn(), SERVER)).toBe(false);
  });

  test("extra variables are added last and win", () => {
    const env = childEnv(passedEnv(passEnvFilter([]), {}), conn(), SERVER, {
      PORT: "9001",
      ROOM: "override",
    });
    expect(env.PORT).toBe("9001");
    expect(env.ROOM).toBe("override");
    expect(Object.keys(env).sort()).toEqual([...CGI_KEYS, "PORT"].sort());
  });

  test("process.env does not leak without --passenv", () => {
    const env = childEnv(passedEnv(passEnvFilter(["PATH"]), process.env), conn(), SERVER);
    for (const key of Object.keys(env)) expect(["PATH", ...CGI_KEYS]).toContain(key);
  });
});

describe("expandTemplate", () => {
  const cases: [string, string, Partial<Connection>, string][] = [
    ["no placeholder", '{"t":"Join"}', {}, '{"t":"Join"}'],
    ["#ID", '{"t":"Join","_from":#ID}', { id: 42 }, '{"t":"Join","_from":42}'],
    ["#ID twice", "#ID/#ID", { id: 3 }, "3/3"],
    ["#ROOM", "room #ROOM", { room: "lobby" }, "room lobby"],
    ["#ROOM is URL-encoded", '"#ROOM"', { room: 'a "b" #ID' }, '"a%20%22b%22%20%23ID"'],
    ["#ROOM keeps URL syntax", "#ROOM", { room: "a:b@c/d?e=f&g%" }, "a:b@c/d?e=f&g%"],
    ["#QUERY_STRING", "#QUERY_STRING", { query: "a=1&b=2" }, "a=1&b=2"],
    ["#QUERY_STRING keeps percent escapes", "#QUERY_STRING", { query: "n=%22x%23" }, "n=%22x%23"],
    ["#QUERY_STRING cannot close a JSON string", '"#QUERY_STRING"', { query: 'a="}\\' }, '"a=%22%7D%5C"'],
    ["#REMOTE_ADDR", "#REMOTE_ADDR", { remoteIp: "10.0.0.1", remotePort: 5 }, "10.0.0.1:5"],
    ["#REMOTE_ADDR IPv6", "#REMOTE_ADDR", { remoteIp: "::1", remotePort: 5 }, "[::1]:5"],
    ["#PROTOCOL", '{"p":"#PROTOCOL"}', { protocol: "graphql-ws" }, '{"p":"graphql-ws"}'],
    ["#PROTOCOL when none was chosen", "[#PROTOCOL]", { protocol: "" }, "[]"],
    ["#QUERY_<NAME>", "#QUERY_NAME", { query: "name=bob" }, "bob"],
    ["#QUERY_<NAME> is case-insensitive", "#QUERY_NAME", { query: "Name=bob" }, "bob"],
    ["#QUERY_<NAME> lower-case in the template", "#QUERY_name", { query: "NAME=bob" }, "bob"],
    ["#QUERY_<NAME> with - and .", "#QUERY_X-Y.Z", { query: "x-y.z=1" }, "1"],
    ["#QUERY_<NAME> decodes then URL-encodes", "#QUERY_N", { query: "n=a+b%20c%2Fd" }, "a%20b%20c%2Fd"],
    ["#QUERY_<NAME> of an empty value", "[#QUERY_N]", { query: "n=" }, "[]"],
    ["#QUERY_<NAME> missing", "[#QUERY_MISSING]", { query: "n=1" }, "[]"],
    ["#QUERY_<NAME> with no query at all", "[#QUERY_N]", { query: "" }, "[]"],
    ["#QUERY_<NAME> repeated takes the first", "#QUERY_N", { query: "n=1&n=2" }, "1"],
    ["a value with #ID is not expanded", "#QUERY_N #ID", { id: 9, query: "n=%23ID" }, "%23ID 9"],
    ["a value with #QUERY_X is not expanded", "#QUERY_N", { query: "n=%23QUERY_X&x=1" }, "%23QUERY_X"],
    ["a value with a quote", '{"n":"#QUERY_N"}', { query: "n=%22" }, '{"n":"%22"}'],
    ["a value with unicode", "#QUERY_N", { query: "n=%C3%A9" }, "%C3%A9"],
    ["#USER", '{"_user":"#USER"}', { user: "ann" }, '{"_user":"ann"}'],
    ["#USER is URL-encoded", '"#USER"', { user: 'a "b" #ID' }, '"a%20%22b%22%20%23ID"'],
    ["#USER without a user", '"#USER"', { user: null }, '""'],
    ["an unknown placeholder stays", "#FOO #id", {}, "#FOO #id"],
    ["a lone #", "# #ID", { id: 1 }, "# 1"],
  ];
  test.each(cases)("%s", (_name, template, over, expected) => {
    expect(expandTemplate(template, conn(over))).toBe(expected);
  });

  const hostile = [
    '"',
    '"}',
    '","_from":0,"x":"',
    "\\",
    '\\"',
    "\n",
    "\r\n",
    "\u0000",
    "\u2028",
    "#ID",
    "#QUERY_NAME",
    "#ROOM#ROOM",
    "%22",
    "'",
    "</script>",
    "é漢🎉",
    "a b+c&d=e",
    "{}[]:,",
  ];
  test.each(hostile)("a value of %j cannot break the JSON around it", (value) => {
    const query = new URLSearchParams({ name: value }).toString();
    const template = '{"n":"#QUERY_NAME","r":"#ROOM","q":"#QUERY_STRING","a":"#REMOTE_ADDR","id":#ID}';
    const out = expandTemplate(template, conn({ id: 5, room: value, query, remoteIp: "::1" }));
    expect(out).not.toContain("\n");
    const parsed = JSON.parse(out);
    expect(Object.keys(parsed)).toEqual(["n", "r", "q", "a", "id"]);
    expect(decodeURIComponent(parsed.n)).toBe(value);
    // #ROOM keeps URL syntax (`%` included), so it is JSON-safe rather than reversible.
    expect(parsed.r).toMatch(/^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$/);
    if (!value.includes("%")) expect(decodeURIComponent(parsed.r)).toBe(value);
    expect(parsed.id).toBe(5);
    expect(parsed.a).toBe("[::1]:40000");
  });

  test.each(hostile)("a raw query string of %j cannot break the JSON either", (raw) => {
    const out = expandTemplate('{"q":"#QUERY_STRING","n":"#QUERY_NAME"}', conn({ query: `name=${raw}` }));
    expect(() => JSON.parse(out)).not.toThrow();
  });
});
