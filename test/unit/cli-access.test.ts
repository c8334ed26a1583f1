import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveCli, resolveConfig } from "../../src/cli/index.ts";
import { usageError } from "../helpers.ts";

const DIR = mkdtempSync(join(tmpdir(), "scalesocket-cli-access-"));
afterAll(() => rmSync(DIR, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(DIR, name);
  writeFileSync(path, text);
  return path;
};

const SECRET = "0123456789abcdef0123456789abcdef";
const NO_ENV = {};

const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const EC_PEM = file("ec.pem", ec.publicKey.export({ type: "spki", format: "pem" }) as string);
const JWKS = file(
  "jwks.json",
  JSON.stringify({ keys: [{ ...ec.publicKey.export({ format: "jwk" }), kid: "a" }] }),
);

// A self-signed certificate and its key, and a key of another pair.
execFileSync(
  "openssl",
  [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-keyout",
    join(DIR, "key.pem"),
    "-out",
    join(DIR, "cert.pem"),
  ],
  { stdio: "ignore" },
);
const CERT = join(DIR, "cert.pem");
const KEY = join(DIR, "key.pem");
const OTHER_KEY = file("other.pem", ec.privateKey.export({ type: "pkcs8", format: "pem" }) as string);

describe("access flags", () => {
  test("--origin lists are normalised", () => {
    expect(
      resolveConfig(["--origin", "https://Example.com/, same", "cat"], undefined, NO_ENV).origins,
    ).toEqual(["https://example.com", "same"]);
  });

  test("--jwtsecret, --jwtkey (PEM and JWKS) and --authurl", () => {
    expect(resolveConfig(["--jwtsecret", SECRET, "cat"], undefined, NO_ENV).auth).toEqual({
      kind: "jwtsecret",
      secret: SECRET,
    });
    expect(resolveConfig(["--jwtkey", EC_PEM, "cat"], undefined, NO_ENV).auth).toMatchObject({
      kind: "jwtkey",
    });
    expect(resolveConfig(["--jwtkey", JWKS, "cat"], undefined, NO_ENV).auth).toMatchObject({
      kind: "jwtkey",
    });
    expect(resolveConfig(["--authurl", "http://127.0.0.1:4180/auth", "cat"], undefined, NO_ENV).auth).toEqual(
      {
        kind: "authurl",
        url: "http://127.0.0.1:4180/auth",
      },
    );
  });

  test("--json with an auth flag names the user in the join message", () => {
    expect(resolveConfig(["--json", "cat"], undefined, NO_ENV).joinMsg).toBe('{"t":"Join","_from":#ID}');
    expect(resolveConfig(["--json", "--jwtsecret", SECRET, "cat"], undefined, NO_ENV).joinMsg).toBe(
      '{"t":"Join","_from":#ID,"_user":"#USER"}',
    );
  });

  test("--tlscert and --tlskey are read at start", () => {
    const tls = resolveConfig(["--tlscert", CERT, "--tlskey", KEY, "cat"], undefined, NO_ENV).tls;
    expect(tls?.cert).toContain("BEGIN CERTIFICATE");
    expect(tls?.key).toContain("PRIVATE KEY");
  });

  test("--trustproxy takes IPs and CIDRs", () => {
    expect(
      resolveConfig(["--trustproxy", "127.0.0.1,10.0.0.0/8", "cat"], undefined, NO_ENV).trustProxy,
    ).toEqual(["127.0.0.1", "10.0.0.0/8"]);
  });

  test.each([
    [["--origin", "example.com"], "invalid value 'example.com' for --origin: expected an origin"],
    [["--origin", ","], "--origin needs at least one entry"],
    [["--jwtsecret", "short"], "--jwtsecret is too short: use 32 bytes or more"],
    [["--jwtsecret", SECRET, "--jwtkey", EC_PEM], "--jwtsecret conflicts with --jwtkey"],
    [["--jwtsecret", SECRET, "--authurl", "http://x/"], "--jwtsecret conflicts with --authurl"],
    [["--jwtkey", join(DIR, "missing.pem")], `cannot read --jwtkey '${join(DIR, "missing.pem")}': ENOENT`],
    [["--jwtkey", CERT.replace("cert", "nothing")], "cannot read --jwtkey"],
    [["--authurl", "ftp://x/"], "invalid value 'ftp://x/' for --authurl"],
    [["--trustproxy", "proxy.local"], "invalid value 'proxy.local' for --trustproxy"],
    [["--tlscert", CERT], "--tlscert needs --tlskey"],
    [["--tlskey", KEY], "--tlskey needs --tlscert"],
    [
      ["--tlscert", join(DIR, "nope.pem"), "--tlskey", KEY],
      `cannot read --tlscert '${join(DIR, "nope.pem")}'`,
    ],
    [["--tlscert", KEY, "--tlskey", KEY], `--tlscert '${KEY}' is not a PEM certificate`],
    [["--tlscert", CERT, "--tlskey", CERT], `--tlskey '${CERT}' is not a PEM private key`],
    [["--tlscert", CERT, "--tlskey", OTHER_KEY], `--tlskey '${OTHER_KEY}' is not the key of --tlscert`],
  ])("%p is refused", (argv, message) => {
    expect(usageError([...argv, "cat"])).toStartWith(message);
  });

  test("--jwtkey refuses a shared secret in a JWKS and a file that is no key", () => {
    const oct = file("oct.json", JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] }));
    expect(usageError(["--jwtkey", oct, "cat"])).toContain("use --jwtsecret for a secret");
    expect(usageError(["--jwtkey", file("junk.pem", "hello"), "cat"])).toStartWith("--jwtkey");
  });

  test("a secret is never repeated in an error", () => {
    expect(usageError(["--jwtsecret", "hunter2", "cat"])).not.toContain("hunter2");
  });
});

describe("SCALESOCKET_<FLAG> variables", () => {
  test("set flags, switches as 1 or true, and the command line wins", () => {
    const env = {
      SCALESOCKET_ORIGIN: "https://a.example",
      SCALESOCKET_JWTSECRET: SECRET,
      SCALESOCKET_METRICS: "1",
      SCALESOCKET_API: "true",
      SCALESOCKET_ONESHOT: "0",
      SCALESOCKET_ADDR: "127.0.0.1:7000",
      SCALESOCKET_V: "2",
      SCALESOCKET_MAXFORKS: "3",
      HOME: "/root",
    };
    const c = resolveConfig(["--addr", "127.0.0.1:8000", "cat"], undefined, env);
    expect(c).toMatchObject({
      origins: ["https://a.example"],
      auth: { kind: "jwtsecret", secret: SECRET },
      metrics: true,
      api: true,
      oneshot: false,
      port: 8000,
      verbosity: 2,
      maxRooms: 3,
    });
    expect(resolveConfig(["-v", "cat"], undefined, env).verbosity).toBe(1);
  });

  test("an empty variable is an empty value, as --passenv= is", () => {
    expect(resolveConfig(["cat"], undefined, { SCALESOCKET_PASSENV: "" }).passEnv).toEqual([]);
  });

  test("a bad value names the variable", () => {
    expect(usageError(["cat"], { SCALESOCKET_MAXROOMS: "lots" })).toStartWith(
      "invalid value 'lots' for SCALESOCKET_MAXROOMS:",
    );
    expect(usageError(["cat"], { SCALESOCKET_JSON: "yes" })).toBe(
      "invalid value 'yes' for SCALESOCKET_JSON: expected 1, true, 0 or false",
    );
    expect(usageError(["cat"], { SCALESOCKET_JWTSECRET: "short" })).toStartWith(
      "SCALESOCKET_JWTSECRET is too short",
    );
    expect(usageError(["--jwtkey", EC_PEM, "cat"], { SCALESOCKET_JWTSECRET: SECRET })).toBe(
      "SCALESOCKET_JWTSECRET conflicts with --jwtkey",
    );
  });

  test("an unknown SCALESOCKET_ variable is an error with a hint, so a typo cannot leave a server open", () => {
    expect(usageError(["cat"], { SCALESOCKET_JWTSECRT: SECRET })).toBe(
      "unknown variable SCALESOCKET_JWTSECRT (did you mean SCALESOCKET_JWTSECRET?)",
    );
  });

  test("--help and --version ignore the environment", () => {
    expect(resolveCli(["--help"], { SCALESOCKET_BOGUS: "1" }).kind).toBe("help");
  });
});
