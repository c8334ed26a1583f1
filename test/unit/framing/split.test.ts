import { describe, expect, test } from "bun:test";
import { LineSplitter } from "../../../src/framing/split.ts";

/** Feeds `chunks` to a fresh splitter, then `end()` unless told not to; returns what it reported, in order. */
function split(chunks: string[], { max = 1024, end = true } = {}) {
  const events: (string | { oversize: number })[] = [];
  const splitter = new LineSplitter(
    max,
    (line) => events.push(line),
    (held) => events.push({ oversize: held }),
  );
  for (const chunk of chunks) splitter.push(chunk);
  if (end) splitter.end();
  return events;
}

describe("LineSplitter", () => {
  const cases: [string, string[], (string | { oversize: number })[]][] = [
    ["one line", ["hello\n"], ["hello"]],
    ["many lines in one chunk", ["a\nb\nc\n"], ["a", "b", "c"]],
    ["a line across chunks", ["hel", "lo\n"], ["hello"]],
    ["a line across many chunks", ["h", "e", "l", "l", "o", "\n"], ["hello"]],
    ["a newline alone in a chunk", ["a", "\n", "b", "\n"], ["a", "b"]],
    ["the end of one line and the start of the next", ["a\nb", "c\nd", "\n"], ["a", "bc", "d"]],
    ["CRLF", ["a\r\nb\r\n"], ["a", "b"]],
    ["CRLF split between chunks", ["a\r", "\nb\r", "\n"], ["a", "b"]],
    ["only one trailing CR is removed", ["a\r\r\n"], ["a\r"]],
    ["a CR inside a line is kept", ["a\rb\n"], ["a\rb"]],
    ["a lone CR does not end a line", ["a\rb\r"], ["a\rb"]],
    ["empty lines", ["\n\na\n\n"], ["", "", "a", ""]],
    ["an empty CRLF line", ["\r\n"], [""]],
    ["empty chunks change nothing", ["", "a", "", "\n", ""], ["a"]],
    ["no output at all", [], []],
    ["an unterminated tail is flushed by end()", ["a\nb"], ["a", "b"]],
    ["an unterminated tail across chunks", ["ab", "cd"], ["abcd"]],
    ["an unterminated tail with a CR", ["a\r"], ["a"]],
    ["multibyte text", ["é漢\n🎉\n"], ["é漢", "🎉"]],
    ["multibyte text across chunks", ["漢", "字\n", "🎉"], ["漢字", "🎉"]],
    ["JSON lines", ['{"a":1}\n{"b":"x\\ny"}\n'], ['{"a":1}', '{"b":"x\\ny"}']],
    ["NUL bytes are ordinary characters", ["a\0b\n"], ["a\0b"]],
  ];
  test.each(cases)("%s", (_name, chunks, expected) => {
    expect(split(chunks)).toEqual(expected);
  });

  test("nothing is delivered before its newline arrives, unless end() is called", () => {
    expect(split(["a\nb"], { end: false })).toEqual(["a"]);
  });

  test("end() resets, so the splitter can be reused", () => {
    const lines: string[] = [];
    const splitter = new LineSplitter(
      10,
      (l) => lines.push(l),
      () => {},
    );
    splitter.push("a");
    splitter.end();
    splitter.end();
    splitter.push("b\n");
    expect(lines).toEqual(["a", "b"]);
  });

  describe("oversize messages", () => {
    const cases: [string, number, string[], (string | { oversize: number })[]][] = [
      ["a message of exactly the limit is delivered", 5, ["12345\n"], ["12345"]],
      ["a held tail of exactly the limit is delivered", 5, ["123", "45", "\n"], ["12345"]],
      ["one too long inside a chunk is dropped", 5, ["123456\nok\n"], [{ oversize: 6 }, "ok"]],
      [
        "one too long as a held tail is dropped once and splitting resumes after it",
        5,
        ["ok\n1234", "5678", "9abc", "def\nnext\n"],
        ["ok", { oversize: 8 }, "next"],
      ],
      [
        "one that passes the limit only with its last piece",
        5,
        ["1234", "56\nnext\n"],
        [{ oversize: 6 }, "next"],
      ],
      [
        "the rest of the chunk after the drop is split",
        3,
        ["abcdef\nx\ny\nz"],
        [{ oversize: 6 }, "x", "y", "z"],
      ],
      [
        "two in a row are each reported",
        3,
        ["abcd", "\nefgh\nok\n"],
        [{ oversize: 4 }, { oversize: 4 }, "ok"],
      ],
      ["an oversize tail is not flushed by end()", 3, ["ok\nabcdef"], ["ok", { oversize: 6 }]],
      ["a dropped tail ends at the next newline even if empty", 2, ["abc", "\n\n"], [{ oversize: 3 }, ""]],
      ["multibyte text counts characters", 2, ["漢字\n漢字漢\n"], ["漢字", { oversize: 3 }]],
    ];
    test.each(cases)("%s", (_name, max, chunks, expected) => {
      expect(split(chunks, { max })).toEqual(expected);
    });

    test("after end(), a dropped message does not swallow the next output", () => {
      const lines: string[] = [];
      const splitter = new LineSplitter(
        2,
        (l) => lines.push(l),
        () => {},
      );
      splitter.push("abcdef");
      splitter.end();
      splitter.push("ok\n");
      expect(lines).toEqual(["ok"]);
    });

    test("a huge message without newlines is reported once and never held whole", () => {
      const reports: number[] = [];
      const lines: string[] = [];
      const splitter = new LineSplitter(
        100,
        (l) => lines.push(l),
        (n) => reports.push(n),
      );
      const chunk = "x".repeat(64);
      for (let i = 0; i < 10_000; i++) splitter.push(chunk);
      splitter.push("\nok\n");
      expect(reports).toEqual([128]);
      expect(lines).toEqual(["ok"]);
    });
  });
});
