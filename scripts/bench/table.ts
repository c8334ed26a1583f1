/** Collects the measurements of every repetition and prints them as markdown tables: median (min–max). */

export interface Metric {
  name: string;
  /** Formats one value of this metric. */
  format: (v: number) => string;
}

interface Row {
  config: string;
  metric: Metric;
  values: Map<string, number[]>;
}

interface Group {
  title: string;
  columns: { id: string; label: string }[];
  /** Why a column has no values in this group (n/a, missing binary). */
  absent: Map<string, string>;
  rows: Row[];
  notes: string[];
}

/** Three significant digits, with k/M for large numbers: 1234 → 1234, 12345 → 12.3k, 999_960 → 1.00M. */
export function sig(v: number): string {
  if (!Number.isFinite(v)) return "—";
  const abs = Math.abs(v);
  // Thresholds sit where rounding to three digits would carry into the next unit (9995 → 10.0k, not 1.00e+1k).
  if (abs >= 999_500) return `${(v / 1e6).toPrecision(3)}M`;
  if (abs >= 9_995) return `${(v / 1e3).toPrecision(3)}k`;
  if (abs >= 99.95) return v.toFixed(0);
  return v.toPrecision(3);
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? (s[mid] as number)
      : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

export class Results {
  private readonly groups: Group[] = [];

  /** Starts a new table. */
  group(title: string, columns: { id: string; label: string }[]): void {
    this.groups.push({ title, columns, absent: new Map(), rows: [], notes: [] });
  }

  private current(): Group {
    const g = this.groups.at(-1);
    if (g === undefined) throw new Error("no group");
    return g;
  }

  /** Marks a column of the current table as not measured, with the reason shown in its cells. */
  absent(id: string, why: string): void {
    this.current().absent.set(id, why);
  }

  note(text: string): void {
    const notes = this.current().notes;
    if (!notes.includes(text)) notes.push(text);
  }

  add(config: string, metric: Metric, system: string, value: number): void {
    const g = this.current();
    let row = g.rows.find((r) => r.config === config && r.metric.name === metric.name);
    if (row === undefined) {
      row = { config, metric, values: new Map() };
      g.rows.push(row);
    }
    const list = row.values.get(system) ?? [];
    list.push(value);
    row.values.set(system, list);
  }

  /** The median of a measurement, NaN when it was not taken. */
  get(title: string, config: string, metric: string, system: string): number {
    const g = this.groups.find((x) => x.title === title);
    const row = g?.rows.find((r) => r.config === config && r.metric.name === metric);
    return median(row?.values.get(system) ?? []);
  }

  /** All tables, as markdown. */
  markdown(): string {
    const out: string[] = [];
    for (const g of this.groups) {
      out.push(`### ${g.title}`, "");
      out.push(`| case | metric | ${g.columns.map((c) => c.label).join(" | ")} |`);
      out.push(`| --- | --- | ${g.columns.map(() => "---").join(" | ")} |`);
      for (const row of g.rows) {
        const cells = g.columns.map((c) => {
          const why = g.absent.get(c.id);
          if (why !== undefined) return why;
          const xs = row.values.get(c.id);
          if (xs === undefined || xs.length === 0) return "—";
          const f = row.metric.format;
          if (xs.length === 1) return f(xs[0] as number);
          return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
        });
        out.push(`| ${row.config} | ${row.metric.name} | ${cells.join(" | ")} |`);
      }
      if (g.notes.length > 0) out.push("", ...g.notes.map((n) => `- ${n}`));
      out.push("");
    }
    return out.join("\n");
  }
}
