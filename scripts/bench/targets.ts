/** The targets, computed from the medians of one run. */
import type { Plan } from "./plan.ts";
import { scaleTargets } from "./scale.ts";
import { M } from "./scenarios.ts";
import type { Results } from "./table.ts";

export interface Target {
  what: string;
  value: string;
  verdict: string;
}

const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : "—");

/**
 * `primary` is the scalesocket build the targets are about; `json` the same build with `--json`; `binary` the
 * compiled binary's column, which alone the start-up target is about (not measured when it is missing).
 */
export function targets(
  r: Results,
  primary: string,
  json: string,
  binary: string,
  plan: Plan,
  access = `${primary}-access`,
): Target[] {
  const { fanoutClients } = plan;
  const out: Target[] = [];
  /** A ratio against the bound: `at least` for rates, `at most` for costs. */
  const ratio = (what: string, a: number, b: number, bound: { min: number } | { max: number } | null) => {
    const q = a / b;
    let verdict = "reported (no threshold)";
    if (!Number.isFinite(q)) verdict = "not measured";
    else if (bound !== null && "min" in bound) {
      verdict = q >= bound.min ? `met (≥ ${x(bound.min)})` : `missed: ${x(q)} < ${x(bound.min)}`;
    } else if (bound !== null) {
      verdict = q <= bound.max ? `met (≤ ${x(bound.max)})` : `missed: ${x(q)} > ${x(bound.max)}`;
    }
    out.push({ what, value: x(q), verdict });
  };
  const pinned = "Echo, pinned";
  const c100 = "C=100 window=32";
  const rt = (sys: string) => r.get(pinned, c100, M.roundTrips.name, sys);
  const cpu = (sys: string) => r.get(pinned, c100, M.cpuPerMsg.name, sys);

  // The bounds are the targets.
  ratio("echo C=100 pinned, round trips/s vs websocketd", rt(primary), rt("websocketd"), { min: 1.5 });
  ratio("echo C=100 pinned, round trips/s vs ceiling", rt(primary), rt("ceiling"), { min: 0.65 });
  ratio("echo C=100 pinned, server CPU/msg vs ceiling", cpu(primary), cpu("ceiling"), { max: 1.25 });
  // Not one of the targets, but the steadier twin of the rate against websocketd.
  ratio("echo C=100 pinned, server CPU/msg vs websocketd", cpu(primary), cpu("websocketd"), null);
  const p50 = (sys: string) => r.get(pinned, "C=1 window=1", M.p50.name, sys);
  ratio("echo C=1 pinned, p50 latency vs ceiling", p50(primary), p50("ceiling"), { max: 2 });
  for (const n of fanoutClients) {
    const fc = (sys: string) => r.get("Fan-out", `N=${n}`, M.cpuPerDelivery.name, sys);
    ratio(`fan-out N=${n}, server CPU/delivery vs ceiling`, fc(primary), fc("ceiling"), { max: 1.15 });
  }
  ratio("--json cost: echo C=100 pinned, CPU/msg --json vs plain", cpu(json), cpu(primary), { max: 1.25 });
  const accessCpu = (sys: string) => r.get("Echo, pinned, access checks", c100, M.cpuPerMsg.name, sys);
  ratio(
    "access checks: echo C=100 pinned, CPU/msg --origin --jwtsecret vs off",
    accessCpu(access),
    accessCpu(primary),
    {
      max: 1.05,
    },
  );
  const mid = fanoutClients.includes(100) ? 100 : (fanoutClients[0] ?? 0);
  const fj = (sys: string) => r.get("Fan-out", `N=${mid}`, M.cpuPerDelivery.name, sys);
  ratio(`--json cost: fan-out N=${mid}, CPU/delivery --json vs plain`, fj(json), fj(primary), { max: 1.25 });
  // A plain room cannot route; its counterpart is the ceiling sending the same lines to the same clients with
  // no child and no JSON, so the ratio is what reading the routing keys and the child's output cost.
  const routed = (sys: string) =>
    r.get(
      "JSON `_to` routing",
      `N=${plan.routedClients}, ${plan.routedLinesPerClient} lines each`,
      M.cpuPerDelivery.name,
      sys,
    );
  ratio("--json cost: `_to` routing, CPU/delivery vs the ceiling routing", routed(json), routed("ceiling"), {
    max: 1.25,
  });
  const churn = (sys: string) => r.get("Churn", "C=10", M.conns.name, sys);
  // The scale issue raised churn's target from 1.0× to 1.1× websocketd.
  ratio("churn C=10, connections/s vs websocketd", churn(primary), churn("websocketd"), { min: 1.1 });
  // What the bound leaves for scalesocket's features: the same start path with none of them, against websocketd.
  ratio("churn C=10, the floor (bare.ts) vs websocketd", churn("floor"), churn("websocketd"), null);

  const atMost = (what: string, v: number, limit: number, unit: string) =>
    out.push({
      what: `${what}, target ≤ ${limit} ${unit}`,
      value: Number.isFinite(v) ? `${v.toFixed(1)} ${unit}` : "—",
      verdict: !Number.isFinite(v)
        ? "not measured"
        : v <= limit
          ? "met"
          : `missed by ${(v - limit).toFixed(1)} ${unit} (${(v / limit).toFixed(2)}×)`,
    });
  const memory = r.get("Memory", "1000 idle clients, 1 room", M.perClient.name, primary);
  atMost("memory per idle client (1000 in one room)", memory, 10, "KiB");
  const startup = (m: string) => r.get("Start-up", "cold start", m, binary);
  atMost("start-up, exec to listening (first TCP connect)", startup(M.listen.name), 25, "ms");
  atMost("start-up, exec to first websocket open (room's child started)", startup(M.startup.name), 25, "ms");
  out.push(...scaleTargets(r, primary, plan));
  return out;
}

export function targetsMarkdown(list: Target[]): string {
  return [
    "| target | scalesocket | verdict |",
    "| --- | --- | --- |",
    ...list.map((t) => `| ${t.what} | ${t.value} | ${t.verdict} |`),
  ].join("\n");
}
