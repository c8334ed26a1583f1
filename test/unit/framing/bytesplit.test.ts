import { describe, expect, test } from "bun:test";
import {
  byteSplitter,
  ChunkPassthrough,
  DelimiterSplitter,
  delimiterBytes,
} from "../../../src/framing/bytesplit.ts";
import { within } from "../../helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Result {
  messages: string[];
  oversize: number[];
}

/** Splits `input` fed in chunks of the given sizes (cycled; default: all at once), then ends the stream. */
function split(delimiters: string, input: string | Uint8Array, sizes: number[] = [], max = 1024): Result {
  const bytes = typeof input === "string" ? enc.encode(input) : input;
  const result: Result = { messages: [], oversize: [] };
  const splitter = new DelimiterSplitter(
    delimiterBytes(delimiters),
    max,
    (m) => result.messages.push(dec.decode(m)),
    (n) => result.oversize.push(n),
  );
  const cut = sizes.length === 0 ? [Math.max(1, bytes.length)] : sizes;
  let pos = 0;
  for (let i = 0; pos < bytes.length; i++) {
    const size = cut[i % cut.length] ?? 1;
    splitter.push(bytes.subarray(pos, pos + size));
    pos += size;
  }
  splitter.end();
  return result;
}

describe("delimiterBytes", () => {
  test("one byte per ASCII character", () => {
    expect([...delimiterBytes("bc")]).toEqual([0x62, 0x63]);
    expect([...delimiterBytes("\n\0,")]).toEqual([10, 0, 44]);
  });

  test("refuses an empty list and non-ASCII characters", () => {
    expect(() => delimiterBytes("")).toThrow("at least one");
    expect(() => delimiterBytes("aé")).toThrow("delimiter 'é' is not ASCII");
    expect(() => delimiterBytes("🎉")).toThrow("delimiter '🎉' is not ASCII");
  });
});

describe("DelimiterSplitter: upstream cases", () => {
  test("--delimiters=bc on foobar\\n: foo, then ar\\n at the end", () => {
    expect(split("bc", "foobar\n")).toEqual({ messages: ["foo", "ar\n"], oversize: [] });
  });

  test("--null on foo\\0bar: foo, then bar at the end", () => {
    expect(split("\0", "foo\0bar")).toEqual({ messages: ["foo", "bar"], oversize: [] });
  });
});

describe("DelimiterSplitter", () => {
  const input = "alpha,beta;gamma\n,;delta,epsilon";
  const expected = ["alpha", "beta", "gamma", "", "", "delta", "epsilon"];

  test("any of several delimiters, with empty messages between adjacent ones", () => {
    expect(split(",;\n", input).messages).toEqual(expected);
  });

  test("the same messages for every chunking", () => {
    for (let size = 1; size <= input.length; size++)
      expect(split(",;\n", input, [size]).messages).toEqual(expected);
    expect(split(",;\n", input, [3, 1, 7, 2]).messages).toEqual(expected);
  });

  test("a trailing delimiter delivers no extra empty message; a leading one delivers one", () => {
    expect(split("\n", "a\nb\n").messages).toEqual(["a", "b"]);
    expect(split("\n", "\na").messages).toEqual(["", "a"]);
    expect(split("\n", "\n\n").messages).toEqual(["", ""]);
    expect(split("\n", "").messages).toEqual([]);
  });

  test("bytes are kept exactly: no \\r trimming, any byte value", () => {
    const bytes = new Uint8Array([0xff, 0x0d, 0x00, 0x80, 0x0d, 0x0a]);
    const got: number[][] = [];
    const splitter = new DelimiterSplitter(
      new Uint8Array([0]),
      16,
      (m) => got.push([...m]),
      () => {},
    );
    splitter.push(bytes);
    splitter.end();
    expect(got).toEqual([
      [0xff, 0x0d],
      [0x80, 0x0d, 0x0a],
    ]);
  });

  test("a repeated delimiter byte still uses the single-delimiter path correctly", () => {
    expect(split("\n\n", "a\nb").messages).toEqual(["a", "b"]);
  });

  test("a delivered message is a copy, not a view of the chunk", () => {
    const chunk = enc.encode("keep\nhold");
    const got: Uint8Array[] = [];
    const splitter = new DelimiterSplitter(
      delimiterBytes("\n"),
      64,
      (m) => got.push(m),
      () => {},
    );
    splitter.push(chunk);
    chunk.fill(0x21);
    splitter.push(enc.encode("ing\n"));
    expect(got.map((m) => dec.decode(m))).toEqual(["keep", "holding"]);
  });

  test("a message of exactly maxMessage is delivered, in one piece or many", () => {
    const message = "x".repeat(10);
    expect(split("\n", `${message}\nnext\n`, [], 10).messages).toEqual([message, "next"]);
    expect(split("\n", `${message}\nnext\n`, [1], 10).messages).toEqual([message, "next"]);
    expect(split("\n", message, [3], 10).messages).toEqual([message]);
  });

  test("a longer message inside one chunk is dropped and reported; the rest go through", () => {
    expect(split("\n", `short\n${"y".repeat(11)}\nafter\n`, [], 10)).toEqual({
      messages: ["short", "after"],
      oversize: [11],
    });
  });

  test("a longer message across chunks is dropped whole, reported once, and splitting resumes after it", () => {
    const input = `short\n${"z".repeat(50)}\nafter\n`;
    for (const sizes of [[1], [4], [8, 30], [7, 100]]) {
      const result = split("\n", input, sizes, 10);
      expect(result.messages).toEqual(["short", "after"]);
      expect(result.oversize).toHaveLength(1);
      expect(result.oversize[0]).toBeGreaterThan(10);
    }
  });

  test("an oversized unterminated message is not delivered at the end", () => {
    expect(split("\n", `ok\n${"w".repeat(20)}`, [3], 10)).toEqual({ messages: ["ok"], oversize: [12] });
  });

  test("the splitter is reusable after end()", () => {
    const got: string[] = [];
    const splitter = new DelimiterSplitter(
      delimiterBytes("\n"),
      4,
      (m) => got.push(dec.decode(m)),
      () => {},
    );
    splitter.push(enc.encode("toolong"));
    splitter.end();
    splitter.push(enc.encode("a\nb"));
    splitter.end();
    expect(got).toEqual(["a", "b"]);
  });

  // How fast this runs is a benchmark's question (npm run bench), not a test's: here, that none is lost.
  test("a large stream of small messages in 64 KiB chunks splits into every message", () => {
    const line = enc.encode("0123456789abcdef\n");
    const stream = new Uint8Array(line.length * 100_000);
    for (let i = 0; i < 100_000; i++) stream.set(line, i * line.length);
    for (const delimiters of ["\n", "\n,;"]) {
      let count = 0;
      const splitter = new DelimiterSplitter(
        delimiterBytes(delimiters),
        64,
        () => count++,
        () => {},
      );
      for (let pos = 0; pos < stream.length; pos += 65536) splitter.push(stream.subarray(pos, pos + 65536));
      splitter.end();
      expect(count).toBe(100_000);
    }
  });

  test("a real child: printf through a pipe with --null style output", async () => {
    const proc = Bun.spawn(["printf", "one\\0two\\0\\0three"], { stdout: "pipe" });
    const got: string[] = [];
    const splitter = new DelimiterSplitter(
      new Uint8Array([0]),
      64,
      (m) => got.push(dec.decode(m)),
      () => {},
    );
    await within(
      (async () => {
        for await (const chunk of proc.stdout) splitter.push(chunk);
        splitter.end();
      })(),
      "printf output",
    );
    expect(got).toEqual(["one", "two", "", "three"]);
  });
});

describe("ChunkPassthrough", () => {
  test("each chunk is one message, unchanged and uncopied", () => {
    const got: Uint8Array[] = [];
    const passthrough = new ChunkPassthrough(8, (m) => got.push(m));
    const a = enc.encode("a\nb\0c");
    const b = enc.encode("d");
    passthrough.push(a);
    passthrough.push(new Uint8Array(0));
    passthrough.push(b);
    passthrough.end();
    expect(got).toEqual([a, b]);
    expect(got[0]).toBe(a);
  });

  test("a chunk longer than maxMessage goes out in pieces of at most that size", () => {
    const got: string[] = [];
    const passthrough = new ChunkPassthrough(4, (m) => got.push(dec.decode(m)));
    passthrough.push(enc.encode("abcdefghij"));
    expect(got).toEqual(["abcd", "efgh", "ij"]);
  });
});

describe("byteSplitter", () => {
  test("chooses the passthrough without delimiters and the delimiter splitter with them", () => {
    const noop = () => {};
    expect(byteSplitter(null, 8, noop, noop)).toBeInstanceOf(ChunkPassthrough);
    expect(byteSplitter(new Uint8Array(0), 8, noop, noop)).toBeInstanceOf(ChunkPassthrough);
    expect(byteSplitter(new Uint8Array([0]), 8, noop, noop)).toBeInstanceOf(DelimiterSplitter);
  });
});
