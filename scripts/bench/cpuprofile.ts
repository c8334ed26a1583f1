/**
 * Reading a `.cpuprofile` (what `bun --cpu-prof` writes, Chrome's format) for scripts/bench/profile.ts: where the
 * JavaScript thread spent a window of time, by function, self time only.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The parts of the format used here. Times are microseconds; `startTime` is on the wall clock's epoch. */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionCost {
  /** `name file:line`; host functions (Bun's native calls) have no file. */
  name: string;
  /** The nearest callers, innermost first, for context. */
  callers: string[];
  samples: number;
  /** Samples times the sampling interval, in microseconds. */
  micros: number;
}

export interface ProfileSummary {
  /** The median gap between samples: the interval the sampler actually kept. */
  intervalMicros: number;
  /** Samples in the window, and their time (samples times the interval). */
  samples: number;
  micros: number;
  /** Most expensive first. */
  functions: FunctionCost[];
}

const nameOf = (frame: CallFrame): string => {
  const fn = frame.functionName || "(anonymous)";
  if (!frame.url) return fn;
  const file = frame.url.split("/").slice(-2).join("/");
  return `${fn} ${file}:${frame.lineNumber + 1}`;
};

/**
 * Self time per function over the samples taken between `fromMicros` and `toMicros` (wall clock, µs since the
 * epoch). The sampler takes nothing while the thread waits for events, so the first sample after a wait carries
 * the whole wait as its time delta; each sample counts as one median interval instead. Functions are told
 * apart by name and place, and keep the callers of the sample that cost most.
 */
export function summarize(profile: CpuProfile, fromMicros: number, toMicros: number): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const sorted = [...profile.timeDeltas].sort((a, b) => a - b);
  const interval = sorted[sorted.length >> 1] ?? 0;
  const perNode = new Map<number, number>();
  let time = profile.startTime;
  let samples = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0;
    if (time < fromMicros || time > toMicros) continue;
    const id = profile.samples[i] as number;
    perNode.set(id, (perNode.get(id) ?? 0) + 1);
    samples++;
  }
  const functions = new Map<string, FunctionCost & { best: number }>();
  for (const [id, count] of perNode) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const name = nameOf(node.callFrame);
    let entry = functions.get(name);
    if (entry === undefined) {
      entry = { name, callers: [], samples: 0, micros: 0, best: 0 };
      functions.set(name, entry);
    }
    entry.samples += count;
    entry.micros = entry.samples * interval;
    if (count > entry.best) {
      entry.best = count;
      entry.callers = callersOf(id, byId, parent);
    }
  }
  return {
    intervalMicros: interval,
    samples,
    micros: samples * interval,
    functions: [...functions.values()]
      .sort((a, b) => b.samples - a.samples)
      .map(({ best: _, ...cost }) => cost),
  };
}

/** Up to three callers of a node, innermost first; the profile's root is left out. */
function callersOf(id: number, byId: Map<number, ProfileNode>, parent: Map<number, number>): string[] {
  const out: string[] = [];
  for (let at = parent.get(id); at !== undefined && out.length < 3; at = parent.get(at)) {
    const node = byId.get(at);
    if (node === undefined || node.callFrame.functionName === "(root)") break;
    out.push(nameOf(node.callFrame));
  }
  return out;
}
