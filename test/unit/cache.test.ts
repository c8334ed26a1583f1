import { describe, expect, test } from "bun:test";
import { MessageCache } from "../../src/cache.ts";

describe("MessageCache", () => {
  test.each([1, 8, 64])("keeps the last %i messages, oldest first", (size) => {
    const cache = new MessageCache(size, 1 << 20);
    for (let i = 1; i <= 100; i++) cache.push(String(i));
    expect(cache.entries()).toEqual(Array.from({ length: size }, (_, i) => String(101 - size + i)));
  });

  test("fewer messages than its size are all kept", () => {
    const cache = new MessageCache(8, 1 << 20);
    cache.push("a");
    cache.push(new Uint8Array([1, 2]));
    expect(cache.entries()).toEqual(["a", new Uint8Array([1, 2])]);
    expect(cache.bytes).toBe(3);
  });

  test("never holds more than maxBytes: the oldest go first", () => {
    const cache = new MessageCache(64, 1000);
    for (let i = 0; i < 10; i++) cache.push(`${i}`.padEnd(300, "x"));
    expect(cache.length).toBe(3);
    expect(cache.bytes).toBe(900);
    expect(cache.entries().map((m) => String(m)[0])).toEqual(["7", "8", "9"]);
  });

  test("a message larger than maxBytes empties it rather than breaking the bound", () => {
    const cache = new MessageCache(8, 100);
    cache.push("small");
    cache.push(new Uint8Array(101));
    expect(cache.length).toBe(0);
    expect(cache.bytes).toBe(0);
  });
});
