import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LogObject } from "consola/core";
import type { LogFormat } from "../../src/config.ts";
import { boundedLineWriter, createLogger, formatLine, tagged } from "../../src/log.ts";
import { until, within } from "../helpers.ts";

const DATE = new Date("2024-05-06T07:08:09.010Z");

function obj(over: Partial<LogObject>): LogObject {
  return { date: DATE, level: 3, type: "info", tag: "", args: [], ...over };
}

/** A logger whose lines are collected instead of written to stderr. */
function collect(format: LogFormat, verbosity: number) {
  const lines: string[] = [];
  const log = createLogger(format, verbosity, (line) => lines.push(line));
  return { log, lines };
}

describe("formatLine", () => {
  const text: [string, Partial<LogObject>, string][] = [
    ["info", { args: ["listening"] }, "2024-05-06T07:08:09.010Z INFO  listening\n"],
    ["warn", { type: "warn", args: ["careful"] }, "2024-05-06T07:08:09.010Z WARN  careful\n"],
    ["error", { type: "error", args: ["broken"] }, "2024-05-06T07:08:09.010Z ERROR broken\n"],
    ["debug", { type: "debug", args: ["detail"] }, "2024-05-06T07:08:09.010Z DEBUG detail\n"],
    ["trace", { type: "trace", args: ["more"] }, "2024-05-06T07:08:09.010Z TRACE more\n"],
    ["a tag", { tag: "lobby", args: ["hi"] }, "2024-05-06T07:08:09.010Z INFO  [lobby] hi\n"],
    ["several arguments", { args: ["a", 1, true] }, "2024-05-06T07:08:09.010Z INFO  a 1 true\n"],
    ["an object argument", { args: ["got", { a: 1 }] }, '2024-05-06T07:08:09.010Z INFO  got {"a":1}\n'],
    [
      "an Error argument",
      { args: ["failed:", new Error("boom")] },
      "2024-05-06T07:08:09.010Z INFO  failed: boom\n",
    ],
    [
      "undefined arguments are left out",
      { args: ["a", undefined, "b"] },
      "2024-05-06T07:08:09.010Z INFO  a b\n",
    ],
    ["a message field", { message: "m", args: ["x"] }, "2024-05-06T07:08:09.010Z INFO  m x\n"],
    ["no arguments", { args: [] }, "2024-05-06T07:08:09.010Z INFO  \n"],
  ];
  test.each(text)("text: %s", (_name, over, expected) => {
    expect(formatLine("text", obj(over))).toBe(expected);
  });

  const escaped: [string, Partial<LogObject>, string][] = [
    [
      "CR LF cannot forge a line",
      { args: ["joined room x\r\n2024-01-01T00:00:00.000Z INFO  FORGED"] },
      "joined room x\\r\\n2024-01-01T00:00:00.000Z INFO  FORGED",
    ],
    ["a tab, NUL and DEL", { args: ["a\tb\0c\x7f"] }, "a\\tb\\x00c\\x7f"],
    ["a terminal escape", { args: ["\x1b[2J\x1b]0;title\x07"] }, "\\x1b[2J\\x1b]0;title\\x07"],
    ["C1 and Unicode line separators", { args: ["a\u0085b\u2028c\u2029"] }, "a\\x85b\\u2028c\\u2029"],
    ["a tag", { tag: "r\noom", args: ["hi"] }, "[r\\noom] hi"],
    ["other Unicode is kept", { args: ["ünïcödé ✓"] }, "ünïcödé ✓"],
  ];
  test.each(escaped)("text escapes control characters: %s", (_name, over, expected) => {
    const line = formatLine("text", obj(over));
    expect(line).toBe(`2024-05-06T07:08:09.010Z INFO  ${expected}\n`);
  });

  const json: [string, Partial<LogObject>, Record<string, string>][] = [
    ["info", { args: ["listening"] }, { time: "2024-05-06T07:08:09.010Z", level: "info", msg: "listening" }],
    [
      "a tag",
      { type: "warn", tag: "lobby", args: ["hi"] },
      { time: DATE.toISOString(), level: "warn", msg: "hi", tag: "lobby" },
    ],
    [
      "an object argument",
      { args: ["got", { a: 1 }] },
      { time: DATE.toISOString(), level: "info", msg: 'got {"a":1}' },
    ],
    [
      "quotes and newlines",
      { args: ['say "hi"\nbye'] },
      { time: DATE.toISOString(), level: "info", msg: 'say "hi"\nbye' },
    ],
  ];
  test.each(json)("json: %s", (_name, over, expected) => {
    const line = formatLine("json", obj(over));
    expect(line.endsWith("\n")).toBe(true);
    expect(line.slice(0, -1)).not.toContain("\n");
    expect(JSON.parse(line)).toEqual(expected);
  });

  test("an argument that cannot be serialised is still printed", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(formatLine("text", obj({ args: ["x", cyclic, 10n] }))).toBe(
      "2024-05-06T07:08:09.010Z INFO  x [object Object] 10\n",
    );
  });
});

describe("createLogger", () => {
  const levels: [number, string[]][] = [
    [0, ["fatal", "error", "warn", "info"]],
    [1, ["fatal", "error", "warn", "info", "debug"]],
    [2, ["fatal", "error", "warn", "info", "debug", "trace"]],
    [5, ["fatal", "error", "warn", "info", "debug", "trace"]],
  ];
  test.each(levels)("verbosity %d shows %j", (verbosity, shown) => {
    const { log, lines } = collect("json", verbosity);
    log.fatal("f");
    log.error("e");
    log.warn("w");
    log.info("i");
    log.debug("d");
    log.trace("t");
    expect(lines.map((l) => JSON.parse(l).level)).toEqual(shown);
  });

  test("text lines: ISO time, padded level, message", () => {
    const { log, lines } = collect("text", 0);
    log.info("listening on", "0.0.0.0:9000");
    log.warn("slow client");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}listening on 0\.0\.0\.0:9000\n$/,
    );
    expect(lines[1]).toMatch(/^\S+ WARN {2}slow client\n$/);
  });

  test("json lines: one object each", () => {
    const { log, lines } = collect("json", 0);
    log.error("request failed:", new Error("boom"));
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] as string);
    expect(line).toMatchObject({ level: "error", msg: "request failed: boom" });
    expect(Date.parse(line.time)).not.toBeNaN();
    expect(Object.keys(line).sort()).toEqual(["level", "msg", "time"]);
  });

  test("withTag tags every line, in both formats", () => {
    const text = collect("text", 1);
    text.log.withTag("lobby").debug("spawned pid 12");
    expect(text.lines[0]).toMatch(/ DEBUG \[lobby\] spawned pid 12\n$/);
    const json = collect("json", 0);
    json.log.withTag("lobby").info("joined");
    expect(JSON.parse(json.lines[0] as string)).toMatchObject({ tag: "lobby", msg: "joined" });
  });

  test("a tagged logger keeps the verbosity of its parent", () => {
    const { log, lines } = collect("text", 0);
    const room = log.withTag("r");
    room.debug("hidden");
    room.info("shown");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("shown");
  });

  test("infoLine and a tagged logger's info write what consola's info writes, in both formats", () => {
    for (const format of ["text", "json"] as const) {
      const { log, lines } = collect(format, 0);
      log.info({ message: "started cat (pid 12)", tag: "lobby" });
      log.infoLine("started cat (pid 12)", "lobby");
      tagged(log, "lobby").info("started cat (pid 12)");
      log.info("client 1 joined");
      log.infoLine("client 1 joined");
      // Alike but for the time (the first 24 characters of a text line, a field of a JSON one).
      const strip = (line: string): unknown => {
        if (format === "text") return line.slice(24);
        const { time, ...rest } = JSON.parse(line);
        expect(Date.parse(time)).not.toBeNaN();
        return rest;
      };
      expect(lines.map(strip)).toEqual([
        strip(lines[0] as string),
        strip(lines[0] as string),
        strip(lines[0] as string),
        strip(lines[3] as string),
        strip(lines[3] as string),
      ]);
      expect(strip(lines[0] as string)).toEqual(
        format === "text"
          ? " INFO  [lobby] started cat (pid 12)\n"
          : { level: "info", msg: "started cat (pid 12)", tag: "lobby" },
      );
      expect(strip(lines[3] as string)).toEqual(
        format === "text" ? " INFO  client 1 joined\n" : { level: "info", msg: "client 1 joined" },
      );
    }
  });

  test("infoLine follows the level consola is at", () => {
    const { log, lines } = collect("text", 0);
    log.level = 2;
    log.infoLine("hidden");
    tagged(log, "r").info("hidden too");
    log.level = 3;
    log.infoLine("shown");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("shown");
  });

  test("never colour, even when the terminal would allow it", () => {
    const { log, lines } = collect("text", 2);
    log.info("a");
    log.error("b");
    log.success("c");
    for (const line of lines) expect(line).not.toContain("\x1b[");
  });

  test("a burst of identical lines is folded rather than written again and again", () => {
    const { log, lines } = collect("text", 0);
    for (let i = 0; i < 50; i++) log.info("same line");
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(10);
    log.info("different line");
    expect(lines.at(-1)).toContain("different line");
  });
});

describe("boundedLineWriter", () => {
  test("a reader that stalls costs at most maxHeld bytes; the dropped lines are counted once it reads", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ss-log-"));
    const file = join(dir, "log.txt");
    // Reads nothing for a while, as a stuck log collector would, then everything.
    const reader = Bun.spawn(["sh", "-c", `sleep 0.5; exec cat > ${file}`], { stdin: "pipe" });
    const { write } = boundedLineWriter(reader.stdin, 256 * 1024);
    const line = `${"x".repeat(1023)}\n`;
    for (let i = 0; i < 3000; i++) write(line);
    await until(
      () => existsSync(file) && readFileSync(file, "utf8").includes("log line(s) dropped"),
      "the note",
    );
    reader.stdin.end();
    await within(reader.exited, "the reader to exit");
    const text = readFileSync(file, "utf8");
    const kept = text.split("\n").filter((l) => l.startsWith("x")).length;
    const dropped = Number(/WARN {2}(\d+) log line\(s\) dropped/.exec(text)?.[1]);
    expect(kept + dropped).toBe(3000);
    // The pipe itself takes some (about 90 KiB seen here); beyond it and the 256 KiB bound, lines were dropped,
    // not buffered: 3 MB were offered.
    expect(kept * 1024).toBeLessThan(256 * 1024 + 128 * 1024);
    expect(dropped).toBeGreaterThan(2000);
  });
});
