import { describe, expect, test } from "bun:test";
import { Leases } from "../../../src/cluster/lease.ts";
import { createClusterCounters } from "../../../src/cluster/stats.ts";
import { ACQUIRE, RELEASE, RENEW, type Store } from "../../../src/cluster/store.ts";
import { createLogger } from "../../../src/log.ts";

/** A scripted directory: each EVAL is recorded and answered by `answer` (which may throw, for Redis away). */
class FakeStore implements Store {
  readonly calls: { script: string; keys: string[]; args: string[] }[] = [];
  answer: (script: string, keys: string[], args: string[]) => unknown = () => null;
  async send(): Promise<unknown> {
    return null;
  }
  async eval(script: string, keys: string[], args: string[]): Promise<unknown> {
    this.calls.push({ script, keys, args });
    return this.answer(script, keys, args);
  }
  close(): void {}
  count(script: string): number {
    return this.calls.filter((c) => c.script === script).length;
  }
}

const log = createLogger("text", 0, () => {});
const TIMING = { leaseMs: 300, marginMs: 30, graceMs: 20 };

function setup(inUse: (name: string) => boolean = () => true) {
  const store = new FakeStore();
  const fenced: string[] = [];
  const counters = createClusterCounters();
  let now = 0;
  const leases = new Leases(
    store,
    "ws://me:1",
    TIMING,
    { inUse, fence: (n) => fenced.push(n), record: (n) => `{"name":"${n}"}` },
    counters,
    log,
    () => now,
  );
  return { store, fenced, counters, leases, setNow: (ms: number) => (now = ms) };
}

describe("leases", () => {
  test("acquire: mine when the script names this node, else the holder", async () => {
    const { store, leases } = setup();
    store.answer = (_s, keys) => (keys[0] === "scalesocket:room:a" ? "ws://me:1" : "ws://other:2");
    expect(await leases.acquire("a")).toEqual({ kind: "mine" });
    expect(await leases.acquire("b")).toEqual({ kind: "other", node: "ws://other:2" });
    expect(leases.holds("a")).toBe(true);
    expect(leases.holds("b")).toBe(false);
    expect(store.calls[0]).toEqual({
      script: ACQUIRE,
      keys: ["scalesocket:room:a"],
      args: ["ws://me:1", "300"],
    });
    await leases.stop();
  });

  test("one renewal script for all the leases, each with its lobby record", async () => {
    const { store, leases } = setup();
    store.answer = (script, keys) =>
      script === ACQUIRE ? "ws://me:1" : script === RENEW ? keys.map(() => 1).slice(0, keys.length / 2) : 1;
    for (const name of ["a", "b", "c"]) await leases.acquire(name);
    leases.start();
    await Bun.sleep(130);
    const renew = store.calls.filter((c) => c.script === RENEW);
    expect(renew.length).toBe(1);
    expect(renew[0]?.keys).toEqual([
      "scalesocket:room:a",
      "scalesocket:room:b",
      "scalesocket:room:c",
      "scalesocket:info:a",
      "scalesocket:info:b",
      "scalesocket:info:c",
    ]);
    expect(renew[0]?.args).toEqual(["ws://me:1", "300", '{"name":"a"}', '{"name":"b"}', '{"name":"c"}']);
    await leases.stop();
  });

  test("not renewed in time: fenced at lease - margin - 2 grace after the last renewal sent", async () => {
    const { store, leases, fenced, setNow, counters } = setup();
    store.answer = (script) => {
      if (script === ACQUIRE) return "ws://me:1";
      throw new Error("connection closed");
    };
    setNow(1000);
    await leases.acquire("a");
    // 300 - 30 - 40 = 230 ms after 1000: the fence timer is set from the (fake) clock at acquire.
    setNow(1229);
    expect(leases.holds("a")).toBe(true);
    setNow(1230);
    expect(leases.holds("a")).toBe(false);
    await Bun.sleep(260);
    expect(fenced).toEqual(["a"]);
    expect(counters.leasesFenced).toBe(1);
    await leases.stop();
  });

  test("a lease found held by another node at renewal is fenced at once", async () => {
    const { store, leases, fenced } = setup();
    store.answer = (script) => (script === ACQUIRE ? "ws://me:1" : script === RENEW ? [0] : 0);
    await leases.acquire("a");
    leases.start();
    await Bun.sleep(130);
    expect(fenced).toEqual(["a"]);
    await leases.stop();
  });

  test("released (compare-and-delete) once nothing uses it, and not while a connection is pending", async () => {
    let used = true;
    const { store, leases } = setup(() => used);
    store.answer = (script) => (script === ACQUIRE ? "ws://me:1" : 1);
    await leases.acquire("a");
    used = false;
    leases.releaseIfUnused("a");
    expect(store.count(RELEASE)).toBe(0);
    leases.entered("a");
    leases.releaseIfUnused("a");
    expect(store.calls.at(-1)).toEqual({
      script: RELEASE,
      keys: ["scalesocket:room:a", "scalesocket:info:a"],
      args: ["ws://me:1"],
    });
    expect(leases.size).toBe(0);
    await leases.stop();
  });
});
