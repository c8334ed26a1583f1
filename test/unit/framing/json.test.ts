import { describe, expect, test } from "bun:test";
import { type Routing, routeLine, stampFrom } from "../../../src/framing/json.ts";

describe("stampFrom", () => {
  const stamped: [string, string, number, string][] = [
    ["an empty object", "{}", 1, '{"_from":1}'],
    ["an empty object with spaces", " { } ", 1, '{"_from":1}'],
    ["_to is kept after _from", '{"_to":1}', 1, '{"_from":1,"_to":1}'],
    ["keys keep their order and text", '{"b":2,"a":1.50}', 3, '{"_from":3,"b":2,"a":1.50}'],
    ["a spoofed _from is replaced", '{"_from":9}', 2, '{"_from":2}'],
    ["a spoofed _from among other keys", '{"a":1,"_from":9,"b":2}', 2, '{"_from":2,"a":1,"b":2}'],
    ["a spoofed _from as a string", '{"_from":"admin","m":"hi"}', 2, '{"_from":2,"m":"hi"}'],
    ["a duplicated spoofed _from", '{"_from":1,"_from":9}', 4, '{"_from":4}'],
    ["a _from spelled with an escape", '{"\\u005ffrom":9}', 4, '{"_from":4}'],
    ["leading whitespace", '  \t{"a":1}', 5, '{"_from":5,"a":1}'],
    ["multi-line JSON becomes one line", '{\n  "a": 1,\n  "b": [1, 2]\n}', 6, '{"_from":6,"a":1,"b":[1,2]}'],
    ["CRLF inside becomes one line", '{\r\n"a":1\r\n}', 6, '{"_from":6,"a":1}'],
    ["a trailing newline is removed", '{"a":1}\n', 6, '{"_from":6,"a":1}'],
    [
      "nested objects are kept",
      '{"o":{"_from":1,"p":{"q":[{}]}}}',
      7,
      '{"_from":7,"o":{"_from":1,"p":{"q":[{}]}}}',
    ],
    ["a string containing _from", '{"m":"\\"_from\\":1"}', 8, '{"_from":8,"m":"\\"_from\\":1"}'],
    ["a string containing braces", '{"m":"{"}', 8, '{"_from":8,"m":"{"}'],
    ["unicode text", '{"m":"é漢🎉"}', 8, '{"_from":8,"m":"é漢🎉"}'],
    ["a large ID", "{}", 4294967295, '{"_from":4294967295}'],
  ];
  test.each(stamped)("%s", (_name, text, id, expected) => {
    const out = stampFrom(text, id);
    expect(out).toBe(expected);
    expect(out).not.toMatch(/[\r\n]/);
    expect(JSON.parse(out as string)._from).toBe(id);
  });

  const refused: [string, string][] = [
    ["an array", "[1,2]"],
    ["an array of objects", '[{"a":1}]'],
    ["a string", '"hello"'],
    ["a number", "42"],
    ["true", "true"],
    ["null", "null"],
    ["invalid JSON", "{a:1}"],
    ["plain text", "hello"],
    ["an empty message", ""],
    ["only whitespace", "  \n "],
    ["two objects", "{}{}"],
    ["an unterminated object", '{"a":1'],
    ["a trailing comma", '{"a":1,}'],
    ["a byte-order mark", "\uFEFF{}"],
  ];
  test.each(refused)("%s is refused", (_name, text) => {
    expect(stampFrom(text, 1)).toBeNull();
  });
});

describe("routeLine", () => {
  const plain: [string, string][] = [
    ["plain text", "hello world"],
    ["an empty line", ""],
    ["an object without keys starting with _", '{"a":1,"b":"x"}'],
    ["an object with _to only inside a string value", '{"m":"use _to"}'],
    ["invalid JSON that mentions _to", '{"_to":1'],
    ["an array carrying _to", '[{"_to":1}]'],
    ["a string that is _to", '"_to"'],
    ["_to of 0", '{"_to":0}'],
    ["_to negative", '{"_to":-1}'],
    ["_to fractional", '{"_to":1.5}'],
    ["_to as a string", '{"_to":"1"}'],
    ["_to as true", '{"_to":true}'],
    ["_to as null", '{"_to":null}'],
    ["_to as an object", '{"_to":{"id":1}}'],
    ["_meta not true", '{"_meta":1,"a":2}'],
    ["_meta as a string", '{"_meta":"true"}'],
    ["_cache not true", '{"_cache":"yes"}'],
    ["a nested _to", '{"o":{"_to":1}}'],
    ["other _ keys", '{"_from":3,"_x":true}'],
  ];
  test.each(plain)("%s is a plain broadcast", (_name, line) => {
    expect(routeLine(line)).toBeNull();
  });

  const routed: [string, string, Routing][] = [
    ["_to", '{"_to":2,"m":"hi"}', { to: 2, meta: null, cache: false }],
    ["_to with whitespace", '  { "_to" : 3 }  ', { to: 3, meta: null, cache: false }],
    ["_to written 1.0", '{"_to":1.0}', { to: 1, meta: null, cache: false }],
    ["_to written with an exponent", '{"_to":2e0}', { to: 2, meta: null, cache: false }],
    ["_to spelled with an escape", '{"\\u005fto":5}', { to: 5, meta: null, cache: false }],
    ["_to spelled with an upper-case escape", '{"\\u005Fto":5}', { to: 5, meta: null, cache: false }],
    ["_meta", '{"_meta":true,"players":2}', { to: null, meta: { players: 2 }, cache: false }],
    ["_meta alone", '{"_meta":true}', { to: null, meta: {}, cache: false }],
    [
      "_meta with nested objects",
      '{"_meta":true,"o":{"a":[1]}}',
      { to: null, meta: { o: { a: [1] } }, cache: false },
    ],
    [
      "_meta with _to keeps _to in the metadata",
      '{"_meta":true,"_to":1}',
      { to: 1, meta: { _to: 1 }, cache: false },
    ],
    ["_cache", '{"_cache":true,"m":1}', { to: null, meta: null, cache: true }],
    ["_cache with _to", '{"_cache":true,"_to":4}', { to: 4, meta: null, cache: true }],
    ["_cache with an invalid _to", '{"_cache":true,"_to":"x"}', { to: null, meta: null, cache: true }],
    ["multi-line whitespace", '{\n"_to":\n7}', { to: 7, meta: null, cache: false }],
  ];
  test.each(routed)("%s", (_name, line, expected) => {
    expect(routeLine(line)).toEqual(expected);
  });

  test("_meta is removed from the metadata and nothing else is", () => {
    const routing = routeLine('{"a":1,"_meta":true,"_cache":false,"b":[true]}');
    expect(routing?.meta).toEqual({ a: 1, _cache: false, b: [true] });
    expect(Object.keys(routing?.meta ?? {})).toEqual(["a", "_cache", "b"]);
  });

  test("lines that cannot carry a routing key are not parsed", () => {
    const parse = JSON.parse;
    let calls = 0;
    JSON.parse = ((...args: Parameters<typeof parse>) => {
      calls++;
      return parse(...args);
    }) as typeof JSON.parse;
    try {
      for (const line of ['{"a":1}', "[1,2,3]", "hello", '{"to":1}', '{"x_to":1}', '{"_from":3,"m":"x"}'])
        routeLine(line);
      expect(calls).toBe(0);
      routeLine('{"_to":1}');
      routeLine('{"\\u005fto":1}');
      routeLine('{"_meta":true}');
      routeLine('{"_cache":true}');
      expect(calls).toBe(4);
    } finally {
      JSON.parse = parse;
    }
  });
});
