import { UsageError } from "./errors.ts";
import { FLAGS, type FlagName, RENAMED } from "./flags.ts";
import { closest } from "./suggest.ts";

/** Variables named with this prefix configure the server; none of them ever reaches a child. */
export const ENV_PREFIX = "SCALESOCKET_";

/** What the environment sets: flags in prescan's normalised form, and the variable behind each flag. */
export interface EnvFlags {
  argv: string[];
  verbosity: number;
  /** Flag name → the variable that set it. */
  from: Map<string, string>;
}

/** `cmd-attach-delay` → `SCALESOCKET_CMD_ATTACH_DELAY`. */
function variableOf(flag: string): string {
  return ENV_PREFIX + flag.toUpperCase().replaceAll("-", "_");
}

/** Every variable a flag can be set by, old names included; not the command, help or version. */
const VARIABLES: ReadonlyMap<string, FlagName> = new Map(
  [
    ...Object.keys(FLAGS).filter((n) => n !== "cmd" && n !== "help" && n !== "version"),
    ...Object.keys(RENAMED),
  ].map((name): [string, FlagName] => [variableOf(name), (RENAMED[name] ?? name) as FlagName]),
);

/**
 * Reads `SCALESOCKET_<FLAG>` variables into flags, skipping those the command line gives (`given`: a flag
 * wins). Switches take `1`/`true` (on) or `0`/`false`/empty (off); `SCALESOCKET_V` a count. An unknown
 * `SCALESOCKET_` variable is an error: a misspelt `SCALESOCKET_JWTSECRT` must not leave a server open.
 */
export function envFlags(
  env: Readonly<Record<string, string | undefined>>,
  given: ReadonlySet<string>,
): EnvFlags {
  const out: EnvFlags = { argv: [], verbosity: 0, from: new Map() };
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.startsWith(ENV_PREFIX) || value === undefined) continue;
    const name = VARIABLES.get(variable);
    if (name === undefined) {
      const near = closest(variable, [...VARIABLES.keys()]);
      throw new UsageError(
        `unknown variable ${variable}${near === undefined ? "" : ` (did you mean ${near}?)`}`,
      );
    }
    if (given.has(name)) continue;
    if (name === "v") {
      const count = /^\d$/.test(value) ? Number(value) : switchValue(variable, value) ? 1 : 0;
      out.verbosity = count;
    } else if (FLAGS[name].type === "boolean") {
      if (switchValue(variable, value)) out.argv.push(`--${name}`);
    } else {
      out.argv.push(`--${name}=${value}`);
    }
    out.from.set(name, variable);
  }
  return out;
}

function switchValue(variable: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === "1" || v === "true") return true;
  if (v === "0" || v === "false" || v === "") return false;
  throw new UsageError(`invalid value '${value}' for ${variable}: expected 1, true, 0 or false`);
}

/** The flags a normalised argv gives (`--name` or `--name=value`). */
export function givenFlags(argv: readonly string[], verbosity: number): Set<string> {
  const names = new Set<string>();
  for (const arg of argv) {
    if (!arg.startsWith("--")) continue;
    const eq = arg.indexOf("=");
    names.add(eq === -1 ? arg.slice(2) : arg.slice(2, eq));
  }
  if (verbosity > 0) names.add("v");
  return names;
}

/** A usage error about a flag the environment set names the variable instead, so the user knows where to look. */
export function blameVariables(err: UsageError, from: ReadonlyMap<string, string>): UsageError {
  let message = err.message;
  for (const [flag, variable] of from) {
    message = message.replace(new RegExp(`--${flag}(?![a-z])`, "g"), variable);
  }
  return message === err.message ? err : new UsageError(message);
}
