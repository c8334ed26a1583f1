import type { Config } from "../config.ts";
import type { Framing } from "./framing.ts";
import { oversizeWarning, templateNotices } from "./framing.ts";
import { outputSplitter } from "./output.ts";

/**
 * `--binary`: client messages reach the child as raw bytes, with nothing added; the child's output goes out as
 * binary frames, split on `--delimiters`/`--null` when given, else as the chunks were read.
 */
export function binaryFraming(config: Config): Framing {
  return {
    refusal: "bytes",
    overhead: 0,
    toChild: (message) => message,
    ...templateNotices(config, ""),
    stderr: (line) => line,
    addressed: false,
    reader: (room) =>
      outputSplitter(
        { binary: true, delimiters: config.delimiters, maxMessage: config.maxBuffer },
        (message) => room.broadcast(message, false),
        (size) => room.dropped(oversizeWarning(size, config.maxBuffer)),
      ),
  };
}
