import { FLAGS, type FlagName, RENAMED } from "./flags.ts";

/**
 * Names users bring from other servers (websocketd's `--port`, `--address`, `--loglevel`; the usual
 * `--verbose`) and the flag to write here instead. Our own names spelled with dashes or capitals
 * (`--max-rooms`) need no entry: {@link flagHint} folds dashes, underscores and case first.
 */
const OTHER_NAMES: Readonly<Record<string, string>> = {
  port: "--addr :PORT",
  host: "--addr HOST:PORT",
  bind: "--addr HOST:PORT",
  listen: "--addr HOST:PORT",
  address: "--addr HOST:PORT",
  static: "--staticdir",
  dir: "--staticdir",
  public: "--staticdir",
  root: "--staticdir",
  verbose: "-v",
  debug: "-v",
  trace: "-vv",
  loglevel: "-v",
  logformat: "--log",
  env: "--passenv",
  framing: "--frame",
  once: "--oneshot",
  attachdelay: "--delay",
  timeout: "--grace",
};

/** Every name a typo may be near (folded), and the flag to suggest for it. */
const SPELLINGS: ReadonlyMap<string, string> = new Map([
  ...Object.entries(OTHER_NAMES),
  ...Object.keys(FLAGS)
    .filter((name) => name !== "cmd" && name !== "v")
    .map((name): [string, string] => [name, `--${name}`]),
  ...Object.entries(RENAMED).map(([old, name]): [string, string] => [fold(old), `--${name}`]),
]);

/** Case, dashes and underscores folded away: `--Max-Rooms`, `--max_rooms` and `--maxrooms` are one name. */
function fold(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, "");
}

/**
 * A hint for the unknown long flag `--given`, to follow the error, or undefined when there is none: the flag
 * the user probably meant (other servers' names, our names with dashes or capitals, a typo within a small
 * edit distance), or what to write instead of a flag that cannot exist here.
 */
export function flagHint(given: string): string | undefined {
  // `--v`, `--vv`, `--b`: a short flag written with two dashes.
  if (/^v+$|^[bhV]$/.test(given)) return `did you mean -${given}?`;
  const folded = fold(given);
  if (folded === "cmd" || folded === "command") return "the command is written without a flag, before --";
  const exact = SPELLINGS.get(folded);
  if (exact !== undefined) return `did you mean ${exact}?`;
  // clap has no `--no-` forms, and neither does upstream: a switch is simply left out.
  const negated = /^no(.+)$/.exec(folded)?.[1] ?? "";
  if (Object.hasOwn(FLAGS, negated) && FLAGS[negated as FlagName].type === "boolean") {
    return "a switch is off unless given";
  }
  const near = closest(folded, [...SPELLINGS.keys()]);
  return near === undefined ? undefined : `did you mean ${SPELLINGS.get(near)}?`;
}

/**
 * The option nearest to `value` by edit distance, if it is close enough to be a typo: one edit for words
 * under six letters, two from six. Ties go to the first option.
 */
export function closest(value: string, options: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = (value.length >= 6 ? 2 : 1) + 1;
  for (const option of options) {
    const d = editDistance(value, option);
    if (d < bestDistance) {
      best = option;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const up = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row.push(d);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}
