import { type ByteSplitter, byteSplitter, delimiterBytes } from "./bytesplit.ts";
import { LineSplitter } from "./split.ts";

/** How the child's output is cut into messages, from `--binary`, `--delimiters` and `--null`. */
export interface OutputMode {
  binary: boolean;
  /** Characters to split on; null for the default (`\n` in text mode, the chunks as read in binary mode). */
  delimiters: string | null;
  maxMessage: number;
}

/**
 * Text lines on `\n` (a trailing `\r` dropped), the upstream default: decoded as UTF-8 across chunk borders and
 * split as strings, so a message costs one slice and no copy of bytes.
 */
class TextLines implements ByteSplitter {
  private readonly decoder = new TextDecoder();
  private readonly lines: LineSplitter;

  constructor(maxMessage: number, onMessage: (message: string) => void, onOversize: (size: number) => void) {
    this.lines = new LineSplitter(maxMessage, onMessage, onOversize);
  }

  push(chunk: Uint8Array): void {
    this.lines.push(this.decoder.decode(chunk, { stream: true }));
  }

  end(): void {
    this.lines.push(this.decoder.decode());
    this.lines.end();
  }
}

/**
 * The splitter for one child's output: text lines by default; with `--delimiters`/`--null`, messages cut on any
 * of those bytes (sent as text, or as binary with `--binary`); with `--binary` alone, each chunk as read.
 */
export function outputSplitter(
  mode: OutputMode,
  onMessage: (message: string | Uint8Array) => void,
  onOversize: (size: number) => void,
): ByteSplitter {
  if (!mode.binary && mode.delimiters === null) return new TextLines(mode.maxMessage, onMessage, onOversize);
  const delimiters = mode.delimiters === null ? null : delimiterBytes(mode.delimiters);
  if (mode.binary) return byteSplitter(delimiters, mode.maxMessage, onMessage, onOversize);
  const utf8 = new TextDecoder();
  return byteSplitter(delimiters, mode.maxMessage, (bytes) => onMessage(utf8.decode(bytes)), onOversize);
}
