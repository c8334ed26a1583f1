/**
 * Splits a child's text output into messages on `\n`, dropping one trailing `\r` (upstream's line codec).
 * Chunks arrive as the pipe delivers them, so a message may span many chunks; the unfinished tail is held,
 * up to `maxMessage` characters. A longer message is dropped whole (reported once) rather than buffered
 * without bound, and splitting resumes after its end.
 */
export class LineSplitter {
  private rest = "";
  private discarding = false;

  constructor(
    private readonly maxMessage: number,
    private readonly onMessage: (line: string) => void,
    private readonly onOversize: (heldChars: number) => void,
  ) {}

  /** Feeds one decoded chunk; calls `onMessage` for every message it completes, in order. */
  push(text: string): void {
    let nl = text.indexOf("\n");
    if (nl === -1) {
      this.hold(text);
      return;
    }
    const first = this.rest === "" ? text.slice(0, nl) : this.rest + text.slice(0, nl);
    this.rest = "";
    if (this.discarding) this.discarding = false;
    else this.emit(first);
    let start = nl + 1;
    for (nl = text.indexOf("\n", start); nl !== -1; nl = text.indexOf("\n", start)) {
      this.emit(text.slice(start, nl));
      start = nl + 1;
    }
    if (start < text.length) this.hold(text.slice(start));
  }

  /** Delivers a final unterminated message, as when the child exits without a last newline. */
  end(): void {
    if (this.rest !== "" && !this.discarding) this.emit(this.rest);
    this.rest = "";
    this.discarding = false;
  }

  private hold(text: string): void {
    if (this.discarding) return;
    this.rest += text;
    if (this.rest.length > this.maxMessage) {
      this.onOversize(this.rest.length);
      this.rest = "";
      this.discarding = true;
    }
  }

  private emit(line: string): void {
    if (line.length > this.maxMessage) this.onOversize(line.length);
    else this.onMessage(line.endsWith("\r") ? line.slice(0, -1) : line);
  }
}
