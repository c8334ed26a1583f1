import { command, type Flag, GROUPS, USAGE } from "./flags.ts";

/** Help is read in terminals and pasted into issues: it fits the narrowest common terminal. */
const WIDTH = 80;

const INTRO =
  "Clients connect to ws://HOST:PORT/<ROOM>. The first client of a room starts CMD, and the room's clients " +
  "share it: their messages go to its stdin, each line of its stdout goes to all of them. Every flag can " +
  "also be set as SCALESOCKET_<FLAG> in the environment (SCALESOCKET_JWTSECRET); a flag given wins.";

const ARGUMENTS: readonly [string, string][] = [
  ["<CMD>", command.args.cmd.description],
  ["<ARGS>...", "Arguments to the command: everything after --"],
];

/** Comment, command: each pair is printed as a shell comment over a line to paste. */
const EXAMPLES: readonly [string, string][] = [
  [
    "Quick start: a chat page at http://localhost:9000/, one cat per room",
    "scalesocket --staticdir examples/chat --json cat",
  ],
  [
    'A JSON backend on localhost: client messages arrive with "_from": ID',
    "scalesocket --json --addr 127.0.0.1:8080 ./game.sh",
  ],
  [
    "Interpreters buffer stdout in a pipe: --pty gives the script a terminal",
    "scalesocket --json --pty python3 game.py",
  ],
  ["or python3 -u sends each line at once", "scalesocket --json python3 -- -u game.py"],
  ["A page from ./public and its backend on one port", "scalesocket --staticdir public ./backend.sh"],
  ["Try rooms from a browser: a console at http://localhost:9000/", "scalesocket --devconsole --json cat"],
];

/**
 * Whether help may use escape codes: only for a terminal, and never when NO_COLOR is set to anything but
 * the empty string (no-color.org) or the terminal says it cannot (`TERM=dumb`).
 */
export function useColor(
  isTTY: boolean | undefined,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  return isTTY === true && (env.NO_COLOR ?? "") === "" && env.TERM !== "dumb";
}

/**
 * The `--help` text, rendered from the flag table: the intro, the one usage line, the arguments, the flags by
 * group with their defaults, and examples. No line is wider than 80 columns or ends in a space; escape codes
 * (bold headings and flags) only when `color` is set.
 */
export function helpText({ color = false }: { color?: boolean } = {}): string {
  const bold = (text: string) => (color ? `\x1b[1m${text}\x1b[22m` : text);
  const { meta, args } = command;
  const flags = Object.entries(args as Readonly<Record<string, Flag>>).filter(([name]) => name !== "cmd");
  const labels = new Map(flags.map(([name, flag]) => [name, flagLabel(name, flag)]));
  const column =
    Math.max(...[...labels.values(), ...ARGUMENTS.map(([label]) => `  ${label}`)].map((l) => l.length)) + 2;
  const row = (label: string, items: string[]) => {
    const [first = "", ...rest] = wrap(items, WIDTH - column);
    const name = label.replace(/\S.*/, (text) => bold(text));
    const lines = [name + (first === "" ? "" : " ".repeat(column - label.length) + first)];
    for (const line of rest) lines.push(" ".repeat(column) + line);
    return lines;
  };

  const out = [`${meta.name} ${meta.version}`, meta.description, "", ...wrap(words(INTRO), WIDTH), ""];
  out.push(`${bold("Usage:")} ${USAGE.slice("Usage: ".length)}`, "", bold("Arguments:"));
  for (const [label, text] of ARGUMENTS) out.push(...row(`  ${label}`, words(text)));
  for (const group of GROUPS) {
    out.push("", bold(`${group}:`));
    for (const [name, flag] of flags) {
      if (flag.group !== group) continue;
      const shown = flag.shownDefault ?? (flag.default === undefined ? undefined : String(flag.default));
      // The default is one item of the wrap, so `[default:` and its value never part at a line end.
      const items = words(flag.description ?? "");
      if (shown !== undefined) items.push(`[default: ${shown}]`);
      out.push(...row(labels.get(name) as string, items));
    }
  }
  out.push("", bold("Examples:"));
  out.push(
    ...EXAMPLES.flatMap(([comment, example], i) => [
      ...(i > 0 ? [""] : []),
      `  # ${comment}`,
      `  ${example}`,
    ]),
  );
  return `${out.join("\n")}\n`;
}

/** `  -b, --binary`, `      --addr <ADDR>`, `      --frame[=<MODE>]`, `  -v`: long names line up. */
function flagLabel(name: string, flag: Flag): string {
  if (name === "v") return "  -v";
  const short = "alias" in flag && flag.alias !== undefined ? `-${[flag.alias].flat()[0]}, ` : "    ";
  const value =
    flag.type === "boolean" ? "" : name === "frame" ? `[=<${flag.valueHint}>]` : ` <${flag.valueHint}>`;
  return `  ${short}--${name}${value}`;
}

function words(text: string): string[] {
  return text.split(" ").filter((w) => w !== "");
}

/** Greedy wrap of items (words, or phrases kept whole); one longer than the width gets a line of its own. */
function wrap(items: readonly string[], width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of items) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}
