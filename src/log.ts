import { type ConsolaInstance, createConsola, type LogObject } from "consola/core";
import type { LogFormat } from "./config.ts";
import { BoundedWriter, fileSink } from "./writer.ts";

/**
 * consola, plus `infoLine`: an info line formatted and written straight out. consola's own path (a log object,
 * its spread, the throttle's JSON.stringify) costs several times more per line, and every connection logs three
 * info lines. The lines consola folds when they repeat (a child's stderr, warnings) still go through it.
 */
export type Logger = ConsolaInstance & {
  readonly infoLine: (message: string, tag?: string) => void;
};

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

/** The message and arguments of a log call as one string; the usual single string is taken as it is. */
function messageOf({ message, args }: LogObject): string {
  if (args.length === 0) return message === undefined ? "" : formatArg(message);
  if (message === undefined && args.length === 1) return formatArg(args[0]);
  return [message, ...args]
    .filter((a) => a !== undefined)
    .map(formatArg)
    .join(" ");
}

/** One log line: `time LEVEL [tag] message` for text, one JSON object for json. Never colour, never boxes. */
export function formatLine(format: LogFormat, obj: LogObject): string {
  return lineOf(format, obj.type, obj.date, obj.tag, messageOf(obj));
}

function lineOf(format: LogFormat, type: string, date: Date, tag: string, msg: string): string {
  const time = date.toISOString();
  if (format === "json") {
    const line: Record<string, string> = { time, level: type, msg };
    if (tag) line.tag = tag;
    return `${JSON.stringify(line)}\n`;
  }
  return `${time} ${type.toUpperCase().padEnd(5)} ${tag ? `[${escapeControls(tag)}] ` : ""}${escapeControls(msg)}\n`;
}

// C0, DEL and C1 controls, and the Unicode line and paragraph separators: each can end or forge a line.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROLS_ALL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Whether `s` holds a control character (C0, DEL, C1) or a Unicode line or paragraph separator. */
export function hasControls(s: string): boolean {
  return CONTROLS.test(s);
}
const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * A text log line holds exactly one line, whatever a client chose (a room name, a query, a header, a close
 * reason) or a child printed: control characters are written as escapes (`\n`, `\x1b`, `\u2028`), so that no
 * one can forge a line or send escape sequences to the terminal that shows the log. The usual line has none and
 * costs one scan. JSON lines need nothing more: JSON.stringify escapes C0 controls itself.
 */
export function escapeControls(s: string): string {
  if (!CONTROLS.test(s)) return s;
  return s.replace(CONTROLS_ALL, (c) => {
    const code = c.charCodeAt(0);
    return (
      NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`)
    );
  });
}

/** Log bytes held while stderr does not drain (its reader is stuck); past this, lines are counted and dropped. */
const MAX_HELD_LOG_BYTES = 1024 * 1024;
/**
 * How long a log line may wait for the lines after it: one write per burst rather than one per event-loop turn.
 * A room that opens and closes logs four lines in as many turns; under churn the writes were most of what those
 * lines cost (docs/performance.md).
 */
export const LOG_FLUSH_MS = 10;

/**
 * A line sink over a FileSink, through the same bounded writer a child's input uses: one write per
 * {@link LOG_FLUSH_MS}, at most `maxHeld` bytes held. While the sink cannot flush (stderr is a pipe nobody reads),
 * further lines are dropped and counted, and the count is written once it drained. Logging must never be how a
 * child spamming stderr grows the server's memory.
 */
export function boundedLineWriter(
  sink: Pick<import("bun").FileSink, "write" | "flush" | "end">,
  maxHeld = MAX_HELD_LOG_BYTES,
): { write: (line: string) => void; flush: () => void } {
  let dropped = 0;
  const onIdle = (): void => {
    if (dropped === 0) return;
    const note = `${new Date().toISOString()} WARN  ${dropped} log line(s) dropped: stderr was not being read\n`;
    dropped = 0;
    writer.write(note);
  };
  const writer = new BoundedWriter(maxHeld, undefined, onIdle, LOG_FLUSH_MS);
  writer.attach(fileSink(sink));
  return {
    write: (line) => {
      if (!writer.write(line)) dropped++;
    },
    // Hands what is queued to the sink now; Bun writes out what its sink buffered when the process exits.
    flush: () => writer.flush(),
  };
}

/**
 * Writes log lines to stderr through Bun's own file writer: `process.stderr` would load Node's stream machinery
 * on first use, milliseconds of start-up before the first log line.
 */
function stderrLine(): (line: string) => void {
  const lines = boundedLineWriter(Bun.stderr.writer());
  // Lines are queued for up to LOG_FLUSH_MS; a process that exits first must not lose them.
  process.on("exit", lines.flush);
  return lines.write;
}

/**
 * The one logger of the process, on stderr (stdout stays free for `--help` and `--version`). Rooms log through
 * {@link tagged}.
 */
export function createLogger(
  format: LogFormat,
  verbosity: number,
  write: (line: string) => unknown = stderrLine(),
): Logger {
  const consola = createConsola({
    level: BASE_LEVEL + Math.min(verbosity, 2),
    reporters: [{ log: (obj) => void write(formatLine(format, obj)) }],
    // Identical lines in a burst (a child spamming stderr) are folded rather than flooding the log.
    throttle: 1000,
    throttleMin: 5,
  });
  const infoLine = (message: string, tag = ""): void => {
    if (consola.level >= BASE_LEVEL) write(lineOf(format, "info", new Date(), tag, message));
  };
  return Object.assign(consola, { infoLine });
}

/** A logger whose lines carry a tag (a room's name). */
export interface TaggedLogger {
  log(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

/**
 * Tags every line with `tag`, for a room. Cheaper than consola's `withTag`, which builds a whole logger, paid by
 * every room that opens.
 */
export function tagged(logger: Logger, tag: string): TaggedLogger {
  return {
    log: (message) => logger.log({ message, tag }),
    info: (message) => logger.infoLine(message, tag),
    warn: (message) => logger.warn({ message, tag }),
    error: (message) => logger.error({ message, tag }),
    debug: (message) => logger.debug({ message, tag }),
  };
}
