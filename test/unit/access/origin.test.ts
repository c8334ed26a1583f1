import { describe, expect, test } from "bun:test";
import { withoutToken } from "../../../src/access/index.ts";
import { normalizeOrigin, originMatcher } from "../../../src/access/origin.ts";

describe("normalizeOrigin", () => {
  test.each([
    ["https://Example.com/", "https://example.com"],
    ["http://localhost:3000", "http://localhost:3000"],
    ["https://*.example.com", "https://*.example.com"],
    ["SAME", "same"],
    ["null", "null"],
    ["example.com", null],
    ["https://example.com/path", null],
    ["https://", null],
  ])("%p → %p", (entry, expected) => {
    expect(normalizeOrigin(entry)).toBe(expected);
  });
});

describe("originMatcher", () => {
  const allowed = originMatcher([
    "https://example.com",
    "https://*.example.org",
    "http://localhost:*",
    "same",
  ]);
  test.each([
    [null, null, true],
    ["https://example.com", null, true],
    ["HTTPS://EXAMPLE.COM", null, true],
    ["https://a.example.org", null, true],
    ["https://a.b.example.org", null, true],
    ["https://example.org", null, false],
    ["https://example.org.evil.com", null, false],
    ["http://example.com", null, false],
    ["https://example.com:8443", null, false],
    ["http://localhost:5173", null, true],
    ["http://evil.example", null, false],
    ["null", null, false],
    ["file://", null, false],
    ["http://app.test:9000", "app.test:9000", true],
    ["https://app.test", "app.test:443", true],
    ["https://app.test", "app.test", true],
    ["http://app.test", "app.test:9000", false],
    ["http://evil.test:9000", "app.test:9000", false],
  ])("Origin %p, Host %p → %p", (origin, host, expected) => {
    expect(allowed(origin, host)).toBe(expected);
  });

  test("null is refused unless listed", () => {
    expect(originMatcher(["null"])("null", null)).toBe(true);
  });
});

describe("withoutToken", () => {
  test.each([
    ["", ""],
    ["name=ann", "name=ann"],
    ["token=abc", ""],
    ["name=ann&token=abc&x=%20y", "name=ann&x=%20y"],
    ["to%6Ben=abc&a=1", "a=1"],
    ["token=a&token=b&tokens=c", "tokens=c"],
    ["mytoken=1", "mytoken=1"],
  ])("%p → %p", (query, expected) => {
    expect(withoutToken(query)).toBe(expected);
  });
});
