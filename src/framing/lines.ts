import type { Config } from "../config.ts";
import type { Framing } from "./framing.ts";
import { oversizeWarning, templateNotices } from "./framing.ts";
import { routeLine } from "./json.ts";
import { outputSplitter } from "./output.ts";

const NEWLINE = Buffer.from("\n");

/**
 * Plain text, upstream's default: each client message is one line of the child's input, and each line the child
 * prints (or each piece between `--delimiters`) is broadcast as it is. With `--cache=tagged`, a line that is a
 * JSON object with `"_cache": true` is cached.
 */
export function linesFraming(config: Config): Framing {
  const tagged = config.cache?.type === "tagged";
  return {
    refusal: "a text line",
    overhead: 1,
    // A binary websocket message in text mode is still one line: its bytes, then the newline.
    toChild: (message) => (typeof message === "string" ? `${message}\n` : Buffer.concat([message, NEWLINE])),
    ...templateNotices(config, "\n"),
    stderr: (line) => line,
    addressed: false,
    reader(room) {
      const oversize = (size: number) => room.dropped(oversizeWarning(size, config.maxBuffer));
      const mode = { binary: false, delimiters: config.delimiters, maxMessage: config.maxBuffer };
      if (!tagged) return outputSplitter(mode, (message) => room.broadcast(message, false), oversize);
      // Reading `_cache` costs a look at each line; rooms without a tagged cache broadcast without one.
      return outputSplitter(
        mode,
        (message) =>
          room.broadcast(message, typeof message === "string" && routeLine(message)?.cache === true),
        oversize,
      );
    },
  };
}
