/**
 * Golden files of what a user reads: `--help` and every usage error, compared exactly, so a change to the
 * text is a reviewed diff (upstream tests its help against assets/cli.md the same way).
 * After an intended change: `UPDATE_GOLDEN=1 bun test test/cli-golden.test.ts`, then review the diff.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import pkg from "../../package.json" with { type: "json" };
import { helpText, resolveCli, UsageError, usageErrorText, useColor } from "../../src/cli/index.ts";
import { within } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/cli/", import.meta.url).pathname;
const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;

/** Compares `actual` with the golden file, or rewrites the file when UPDATE_GOLDEN is set. */
function golden(file: string, actual: string): void {
  const path = FIXTURES + file;
  if (process.env.UPDATE_GOLDEN) writeFileSync(path, actual);
  expect(actual).toBe(readFileSync(path, "utf8"));
}

/** The version changes with every release; the golden help says <VERSION> where it goes. */
function withoutVersion(help: string): string {
  return help.replace(`scalesocket ${pkg.version}\n`, "scalesocket <VERSION>\n");
}

/** Lines a terminal 80 columns wide would wrap, and lines ending in a space or tab. */
function badLines(text: string): string[] {
  return text.split("\n").filter((line) => line.length > 80 || /[ \t]$/.test(line));
}

describe("--help", () => {
  test("matches test/fixtures/cli/help.txt", () => {
    golden("help.txt", withoutVersion(helpText()));
  });

  test("fits 80 columns, ends no line in a space, and has exactly one usage line", () => {
    for (const color of [false, true]) {
      const text = Bun.stripANSI(helpText({ color }));
      expect(badLines(text)).toEqual([]);
      expect(text.split("\n").filter((line) => /usage/i.test(line))).toEqual([
        "Usage: scalesocket [OPTIONS] <CMD> [-- <ARGS>...]",
      ]);
    }
  });

  test("escape codes only when asked for, and the same text without them", () => {
    expect(helpText()).not.toContain("\x1b");
    expect(helpText({ color: true })).toContain("\x1b[1m");
    expect(Bun.stripANSI(helpText({ color: true }))).toBe(helpText());
  });

  const colorCases: [string, boolean | undefined, Record<string, string>, boolean][] = [
    ["a terminal", true, {}, true],
    ["a pipe", false, {}, false],
    ["no stream information", undefined, {}, false],
    ["a terminal with NO_COLOR=1", true, { NO_COLOR: "1" }, false],
    ["a terminal with NO_COLOR=0 (any value counts)", true, { NO_COLOR: "0" }, false],
    ["a terminal with an empty NO_COLOR", true, { NO_COLOR: "" }, true],
    ["a dumb terminal", true, { TERM: "dumb" }, false],
  ];
  test.each(colorCases)("colour for %s: %p", (_name, isTTY, env, expected) => {
    expect(useColor(isTTY, env)).toBe(expected);
  });

  /** `scalesocket --help` as printed to a pipe, or to a terminal (with its `\r\n` line ends made `\n`). */
  async function helpIn(terminal: boolean, env: Record<string, string>): Promise<string> {
    const spawnEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", TERM: "xterm", ...env };
    const argv = [process.execPath, MAIN, "--help"];
    if (!terminal) {
      const proc = Bun.spawn(argv, { env: spawnEnv, stdin: "ignore", stdout: "pipe" });
      const [code, out] = await within(
        Promise.all([proc.exited, new Response(proc.stdout).text()]),
        "--help to a pipe",
        15_000,
      );
      expect(code).toBe(0);
      return out;
    }
    // The terminal reports no end of output when the child exits, so the last line of the help is the event.
    const last = Bun.stripANSI(helpText()).trimEnd().split("\n").at(-1) as string;
    let text = "";
    let complete!: () => void;
    const printed = new Promise<void>((resolve) => {
      complete = resolve;
    });
    const pty = new Bun.Terminal({
      cols: 80,
      rows: 24,
      data: (_t, data) => {
        text += new TextDecoder().decode(data).replaceAll("\r\n", "\n");
        if (Bun.stripANSI(text).trimEnd().endsWith(last)) complete();
      },
    });
    try {
      const proc = Bun.spawn(argv, { env: spawnEnv, terminal: pty });
      const [code] = await within(Promise.all([proc.exited, printed]), "--help in a terminal", 15_000);
      expect(code).toBe(0);
      return text;
    } finally {
      pty.close();
    }
  }

  test("the command prints it without colour to a pipe, even without NO_COLOR", async () => {
    const out = await helpIn(false, {});
    expect(out).not.toContain("\x1b");
    expect(out).toBe(helpText());
  });

  test("the command colours it in a terminal, and not with NO_COLOR", async () => {
    const [coloured, plain] = await Promise.all([helpIn(true, {}), helpIn(true, { NO_COLOR: "1" })]);
    expect(coloured).toContain("\x1b[1m");
    expect(plain).not.toContain("\x1b");
    expect(plain).toContain("Usage: scalesocket [OPTIONS] <CMD>");
  });
});

/**
 * One command line per kind of usage error, and the hints. Paths are fixed ones that exist on every Linux
 * machine (/dev/null is a file), so the text does not depend on where the tests run.
 */
const ERROR_CASES: string[][] = [
  [],
  ["--oneshot"],
  ["--", "cat"],
  ["cat", "file"],
  ["--bogus", "cat"],
  ["--bogus=1", "cat"],
  ["-x", "cat"],
  ["-bx", "cat"],
  ["head", "-n", "1"],
  ["python3", "-u", "game.py"],
  ["cat", "--color"],
  ["--v", "cat"],
  ["--vv", "cat"],
  ["--cmd", "cat"],
  ["--no-oneshot", "cat"],
  ["--verbose", "cat"],
  ["--port", "8080", "cat"],
  ["--host", "0.0.0.0", "cat"],
  ["--bind=127.0.0.1:80", "cat"],
  ["--listen", ":80", "cat"],
  ["--static", "public", "cat"],
  ["--dir", "public", "cat"],
  ["--max-rooms", "4", "cat"],
  ["--max-forks", "4", "cat"],
  ["--Addr", ":80", "cat"],
  ["--staticdri", "public", "cat"],
  ["--jsno", "cat"],
  ["--oneshto", "cat"],
  ["--frame", "json", "cat"],
  ["cat", "--frame", "gwsocket"],
  ["--frame", "json"],
  ["--frame", "gwsocket", "--", "-x"],
  ["--oneshot=1", "cat"],
  ["--stats=1", "cat"],
  ["cat", "--addr"],
  ["--addr", "127.0.0.1", "cat"],
  ["--addr", "8080", "cat"],
  ["--log", "xml", "cat"],
  ["--log", "JSON", "cat"],
  ["--frame=binary", "cat"],
  ["--clientframe=jsn", "cat"],
  ["--frame", "--clientframe=json", "cat"],
  ["--json", "--frame=gwsocket", "cat"],
  ["--json", "--serverframe=gwsocket", "cat"],
  ["--maxbuffer", "lots", "cat"],
  ["--grace", "soon", "cat"],
  ["--tcpports", "9999:9001", "cat"],
  ["--staticdir", "/nonexistent/dir", "cat"],
  ["--staticdir", "/dev/null", "cat"],
  ["--staticdir=", "cat"],
  ["--cache", "all:2", "cat"],
  ["--maxrooms", "-1", "cat"],
  ["--maxclients", "0", "cat"],
  ["--ratelimit", "fast", "cat"],
  ["--maxmessage", "10", "cat"],
  ["--rooms=", "cat"],
  ["--delimiters=", "cat"],
  ["--delimiters=;", "--null", "cat"],
  ["--delimiters", "é", "cat"],
  ["--binary", "--json", "cat"],
  ["--null", "--frame=gwsocket", "cat"],
  ["--joinmsg", "hi", "--frame=gwsocket", "cat"],
  ["--devconsole", "--staticdir", "/", "cat"],
  ["--pty", "--tcp", "cat"],
  ["--ptysize", "100x30", "cat"],
  ["--pty", "--ptysize", "80", "cat"],
];

/** An argument as a shell would need it quoted, so each case reads as the command line a user typed. */
function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

function errorText(argv: string[]): string {
  try {
    resolveCli(argv);
  } catch (err) {
    if (err instanceof UsageError) return usageErrorText(err);
    throw err;
  }
  throw new Error(`${argv.join(" ")} raised no usage error`);
}

describe("usage errors", () => {
  test("match test/fixtures/cli/errors.txt", () => {
    const text = ERROR_CASES.map(
      (argv) => `$ ${["scalesocket", ...argv].map(quote).join(" ")}\n${errorText(argv)}`,
    );
    golden("errors.txt", text.join("\n"));
  });

  test("each is one line, without a trailing space, then the usage line", () => {
    for (const argv of ERROR_CASES) {
      const lines = errorText(argv).split("\n");
      expect(lines).toHaveLength(3);
      expect(lines[1]).toBe("Usage: scalesocket [OPTIONS] <CMD> [-- <ARGS>...]");
      expect(lines[2]).toBe("");
      expect(lines[0]).toMatch(/^scalesocket: error: .*\S$/);
    }
  });
});
