import { describe, expect, test } from "bun:test";
import { CrashBackoff } from "../../src/backoff.ts";
import type { Client } from "../../src/client.ts";
import { ConnectionLimits, QueuedBudget, roomNameProblem, TokenBucket } from "../../src/limits.ts";
import { createCounters } from "../../src/stats.ts";

describe("roomNameProblem", () => {
  const ok = ["lobby", "game-1", "a b", "ünïcödé", `${"é".repeat(127)}a`, "...", ".a", "a.", "%2e"];
  test.each(ok)("accepts %p", (name) => {
    expect(roomNameProblem(name)).toBeNull();
  });

  const bad: [string, string, RegExp][] = [
    ["a dot", ".", /'\.' is not allowed/],
    ["two dots", "..", /'\.\.' is not allowed/],
    ["a path", "../../etc/passwd", /'\/' and '\\' are not allowed/],
    ["a slash", "a/b", /'\/'/],
    ["a backslash", "a\\b", /'\\'/],
    ["CR LF", "x\r\nFORGED", /control characters/],
    ["NUL", "\0", /control characters/],
    ["ESC", "\x1b[31m", /control characters/],
    ["DEL", "a\x7f", /control characters/],
    ["a C1 control (NEL)", "a\u0085b", /control characters/],
    ["a line separator", "a\u2028b", /control characters/],
    ["256 bytes", "a".repeat(256), /longer than 255 bytes/],
    ["256 bytes of two-byte characters", "é".repeat(128), /longer than 255 bytes/],
    ["14 KB", "x".repeat(14 * 1024), /longer than 255 bytes/],
  ];
  test.each(bad)("refuses %s", (_name, name, reason) => {
    expect(roomNameProblem(name)).toMatch(reason);
  });
});

describe("TokenBucket", () => {
  test("lets a burst of 2N through, then refills at N per second", () => {
    const bucket = new TokenBucket(5);
    const t0 = performance.now();
    const burst = Array.from({ length: 12 }, () => bucket.take(t0));
    expect(burst.filter(Boolean).length).toBe(10);
    expect(bucket.take(t0 + 100)).toBe(false); // half a token
    expect(bucket.take(t0 + 200)).toBe(true); // one token
    expect(bucket.take(t0 + 200)).toBe(false);
    // A long pause refills to the burst, no more.
    const later = t0 + 60_000;
    expect(Array.from({ length: 12 }, () => bucket.take(later)).filter(Boolean).length).toBe(10);
  });

  test("a client within its rate never runs dry", () => {
    const bucket = new TokenBucket(10);
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) expect(bucket.take(t0 + i * 100)).toBe(true);
  });
});

/** A websocket as the budget sees it: its data only. */
function fakeClient(id: number): Client {
  return { data: { conn: { id }, slow: false } } as unknown as Client;
}

describe("QueuedBudget", () => {
  test("keeps a running total of what each client last had queued; nothing held for empty clients", () => {
    const budget = new QueuedBudget(100, () => {});
    const [a, b] = [fakeClient(1), fakeClient(2)];
    budget.note(a, 0);
    expect(budget.bytes).toBe(0);
    budget.note(a, 30);
    budget.note(b, 20);
    budget.note(a, 50);
    expect(budget.bytes).toBe(70);
    budget.note(a, 0);
    budget.forget(b);
    expect(budget.bytes).toBe(0);
  });

  test("past the budget, the clients with the most queued are closed first, until the rest fit", () => {
    const shed: [number, number][] = [];
    const budget = new QueuedBudget(100, (ws, bytes) => shed.push([ws.data.conn.id, bytes]));
    const clients = [1, 2, 3, 4].map(fakeClient);
    for (const [i, bytes] of [40, 10, 50, 30].entries()) budget.note(clients[i] as Client, bytes);
    expect(shed).toEqual([]);
    budget.enforce();
    // 130 queued: closing client 3 (50) leaves 80.
    expect(shed).toEqual([[3, 50]]);
    // Closed, it still holds its bytes until it is gone, so they count, but it is not closed again: 160 queued,
    // 50 of them already closing; clients 1 and 2 (40 each) go.
    budget.note(clients[1] as Client, 40);
    budget.enforce();
    expect(shed).toEqual([
      [3, 50],
      [1, 40],
      [2, 40],
    ]);
    budget.forget(clients[2] as Client);
    budget.forget(clients[0] as Client);
    expect(budget.bytes).toBe(70);
    budget.enforce();
    expect(shed.length).toBe(3);
  });
});

describe("ConnectionLimits", () => {
  const conn = (ip: string) => ({ remoteIp: ip }) as Parameters<ConnectionLimits["opened"]>[0];

  test("--maxclients and --maxperip at the upgrade (503, 429) and at open (a reason to close)", () => {
    const counters = createCounters();
    const limits = new ConnectionLimits({ maxClients: 3, maxPerIp: 2, rateLimit: null }, counters);
    expect(limits.admit("1.1.1.1")).toBeNull();
    expect(limits.opened(conn("1.1.1.1"))).toBeNull();
    expect(limits.opened(conn("1.1.1.1"))).toBeNull();
    expect(limits.admit("1.1.1.1")).toMatchObject({ status: 429, label: "max_per_ip" });
    expect(limits.admit("2.2.2.2")).toBeNull();
    // An upgrade admitted before the others opened is refused at its open.
    expect(limits.opened(conn("1.1.1.1"))).toMatch(/at most 2 \(--maxperip\)/);
    expect(counters.refusedBy.max_per_ip).toBe(1);
    limits.closed(conn("1.1.1.1"));
    expect(limits.opened(conn("2.2.2.2"))).toBeNull();
    expect(limits.admit("3.3.3.3")).toMatchObject({ status: 503, label: "max_clients" });
    limits.closed(conn("1.1.1.1"));
    expect(limits.admit("3.3.3.3")).toBeNull();
    expect(limits.clients).toBe(2);
  });

  test("without the flags nothing is refused and no address is held", () => {
    const limits = new ConnectionLimits(
      { maxClients: null, maxPerIp: null, rateLimit: null },
      createCounters(),
    );
    for (let i = 0; i < 100; i++) expect(limits.opened(conn("1.1.1.1"))).toBeNull();
    expect(limits.admit("1.1.1.1")).toBeNull();
    expect(limits.bucket()).toBeNull();
  });
});

describe("CrashBackoff", () => {
  const config = { windowMs: 1000, streak: 3, firstMs: 1000, maxMs: 60_000 };

  test("three quick ends in a row start a back-off that doubles from 1 s up to 60 s", () => {
    const backoff = new CrashBackoff(config);
    let now = 0;
    expect(backoff.ended("r", 10, now)).toBe(0);
    expect(backoff.ended("r", 10, now)).toBe(0);
    expect(backoff.remaining("r", now)).toBe(0);
    const waits: number[] = [];
    for (let i = 0; i < 9; i++) {
      const wait = backoff.ended("r", 10, now);
      expect(backoff.remaining("r", now)).toBe(wait);
      waits.push(wait);
      now += wait;
      expect(backoff.remaining("r", now)).toBe(0);
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    expect(backoff.remaining("other", now)).toBe(0);
  });

  test("a child that ran past the window, or a room its clients closed, ends the streak", () => {
    const backoff = new CrashBackoff(config);
    backoff.ended("r", 10, 0);
    backoff.ended("r", 10, 0);
    backoff.ended("r", 1000, 0);
    expect(backoff.ended("r", 10, 0)).toBe(0);
    backoff.ended("r", 10, 0);
    backoff.ended("r", null, 0);
    expect(backoff.tracked).toBe(0);
    expect(backoff.ended("r", 10, 0)).toBe(0);
  });

  test("tracks at most maxTracked room names, the least recently updated forgotten first", () => {
    const backoff = new CrashBackoff(config, 3);
    for (const name of ["a", "b", "c", "d"]) backoff.ended(name, 10, 0);
    expect(backoff.tracked).toBe(3);
    backoff.ended("a", 10, 0);
    backoff.ended("a", 10, 0);
    // "a" was forgotten, so this is its second quick end, not its third.
    expect(backoff.remaining("a", 0)).toBe(0);
    backoff.ended("d", 10, 0);
    expect(backoff.ended("d", 10, 0)).toBe(1000);
  });
});
