import { describe, expect, test } from "bun:test";
import { type CpuProfile, summarize } from "../../../scripts/bench/cpuprofile.ts";

/** root → deliver (src) → publish (native); root → idle-ish parse. Times in µs on the epoch's clock. */
function profile(samples: number[], deltas: number[]): CpuProfile {
  const frame = (functionName: string, url = "", lineNumber = -1) => ({ functionName, url, lineNumber });
  return {
    nodes: [
      { id: 1, callFrame: frame("(root)"), children: [2, 4] },
      { id: 2, callFrame: frame("deliver", "file:///app/src/child/child.ts", 381), children: [3] },
      { id: 3, callFrame: frame("publish") },
      { id: 4, callFrame: frame("parse") },
    ],
    startTime: 1_000_000,
    samples,
    timeDeltas: deltas,
  };
}

describe("summarize (bench-profile's reading of bun --cpu-prof)", () => {
  test("self time per function, each sample one median interval, the wait before a sample not counted", () => {
    // The third sample comes after a 5 s wait for events: it must count as one interval, not 5 s.
    const p = profile([3, 3, 3, 2, 4], [100, 100, 5_000_000, 100, 100]);
    const s = summarize(p, 0, Number.MAX_SAFE_INTEGER);
    expect(s.intervalMicros).toBe(100);
    expect(s.samples).toBe(5);
    expect(s.micros).toBe(500);
    expect(s.functions.map((f) => [f.name, f.samples, f.micros])).toEqual([
      ["publish", 3, 300],
      ["deliver child/child.ts:382", 1, 100],
      ["parse", 1, 100],
    ]);
    expect(s.functions[0]?.callers).toEqual(["deliver child/child.ts:382"]);
    expect(s.functions[2]?.callers).toEqual([]);
  });

  test("only the samples inside the window count", () => {
    // Sample times: 1_000_100, 1_000_200, 1_000_300, 1_000_400.
    const p = profile([4, 3, 3, 4], [100, 100, 100, 100]);
    const s = summarize(p, 1_000_150, 1_000_350);
    expect(s.samples).toBe(2);
    expect(s.functions.map((f) => f.name)).toEqual(["publish"]);
  });

  test("an empty window is empty, not an error", () => {
    const s = summarize(profile([3], [100]), 0, 10);
    expect(s.samples).toBe(0);
    expect(s.functions).toEqual([]);
  });
});
