import { UsageError } from "./errors.ts";
import { FLAGS, type FlagName, FRAME_MODES, RENAMED, SHORT } from "./flags.ts";
import { flagHint } from "./suggest.ts";

export interface Prescanned {
  /** Flags rewritten to `--name` or `--name=value`, and positionals, for resolve.ts to read. */
  argv: string[];
  /** Everything after `--`, untouched. */
  trailing: string[];
  verbosity: number;
  help: boolean;
  version: boolean;
  /**
   * A framing mode written right after a bare `--frame` (`--frame json cat`): the user meant it as the
   * value, but a bare `--frame` takes none, so it became a positional. Kept to explain the error it causes.
   */
  misreadFrameMode?: string;
}

const AFTER_CMD_HINT = "arguments to the command go after --";

/**
 * Normalises the upstream flag forms that citty cannot express: a bare `--frame` that must not take the next
 * word, `-vv` counts, `--passenv=` with an empty value, old flag names, and `--` before the command's arguments.
 * It also rejects unknown flags, missing values and values given to switches, which citty lets through.
 */
export function prescan(raw: readonly string[]): Prescanned {
  const out: Prescanned = { argv: [], trailing: [], verbosity: 0, help: false, version: false };
  let sawPositional = false;
  for (let i = 0; i < raw.length; i++) {
    const arg = raw[i] as string;
    if (arg === "--") {
      out.trailing = raw.slice(i + 1);
      break;
    }
    if (/^-v+$/.test(arg)) {
      out.verbosity += arg.length - 1;
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      out.argv.push(arg);
      sawPositional = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      for (const ch of arg.slice(1)) {
        // `-v` may be grouped with other switches (`-bv`), as clap allows.
        if (ch === "v") {
          out.verbosity++;
          continue;
        }
        const name = SHORT[ch];
        // `head -n 1`: the command's own flags are the usual reason for an unknown short flag.
        if (name === undefined) throw unknownFlag(`-${ch}`, sawPositional ? AFTER_CMD_HINT : undefined);
        pushSwitch(out, name);
      }
      continue;
    }
    const eq = arg.indexOf("=");
    const given = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const name = RENAMED[given] ?? given;
    if (!Object.hasOwn(FLAGS, name) || name === "cmd" || name === "v") {
      throw unknownFlag(`--${given}`, flagHint(given) ?? (sawPositional ? AFTER_CMD_HINT : undefined));
    }
    const def = FLAGS[name as FlagName];
    if (name === "frame") {
      // A bare --frame means json and never consumes the next word: `--frame head` wraps `head`.
      out.argv.push(`--frame=${inline ?? "json"}`);
      const next = raw[i + 1];
      if (inline === undefined && (FRAME_MODES as readonly (string | undefined)[]).includes(next)) {
        out.misreadFrameMode = next;
      }
    } else if (def.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`flag --${given} takes no value`);
      pushSwitch(out, name as FlagName);
    } else {
      const value = inline ?? raw[++i];
      if (value === undefined) throw new UsageError(`flag --${given} needs a value <${def.valueHint}>`);
      out.argv.push(`--${name}=${value}`);
    }
  }
  return out;
}

function unknownFlag(flag: string, hint: string | undefined): UsageError {
  return new UsageError(hint === undefined ? `unknown flag ${flag}` : `unknown flag ${flag} (${hint})`);
}

function pushSwitch(out: Prescanned, name: FlagName): void {
  if (name === "help") out.help = true;
  else if (name === "version") out.version = true;
  else out.argv.push(`--${name}`);
}
