import { type ConsolaInstance, createConsola, type LogObject } from "consola/core";
import type { LogFormat } from "./config.ts";

export type Logger = ConsolaInstance;

/** consola levels: 3 info, 4 debug (`-v`), 5 trace (`-vv`). */
const BASE_LEVEL = 3;

function formatArg(arg: unknown): string {
  if (typeof arg === "string") return arg;
  if (arg instanceof Error) return arg.message;
  try {
    return JSON.stringify(arg) ?? String(arg);
  } catch {
    return String(arg);
  }
}

/** One log line: `time LEVEL [tag] message` for text, one JSON object for json. Never colour, never boxes. */
export function formatLine(format: LogFormat, obj: LogObject): string {
  const msg = [obj.message, ...obj.args]
    .filter((a) => a !== undefined)
    .map(formatArg)
    .join(" ");
  const time = obj.date.toISOString();
  if (format === "json") {
    const line: Record<string, string> = { time, level: obj.type, msg };
    if (obj.tag) line.tag = obj.tag;
    return `${JSON.stringify(line)}\n`;
  }
  const tag = obj.tag ? `[${obj.tag}] ` : "";
  return `${time} ${obj.type.toUpperCase().padEnd(5)} ${tag}${msg}\n`;
}

/**
 * The one logger of the process, on stderr (stdout stays free for `--help` and `--version`). Rooms log through
 * `logger.withTag(room)`.
 */
export function createLogger(
  format: LogFormat,
  verbosity: number,
  write: (line: string) => unknown = (s) => process.stderr.write(s),
): Logger {
  return createConsola({
    level: BASE_LEVEL + Math.min(verbosity, 2),
    reporters: [{ log: (obj) => void write(formatLine(format, obj)) }],
    // Identical lines in a burst (a child spamming stderr) are folded rather than flooding the log.
    throttle: 1000,
    throttleMin: 5,
  });
}
