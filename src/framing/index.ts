import type { Config } from "../config.ts";
import { binaryFraming } from "./binary.ts";
import type { ClientFraming, Framing, ServerFraming } from "./framing.ts";
import { gwsocketFraming } from "./gwsocket.ts";
import { jsonFraming } from "./json.ts";
import { linesFraming } from "./lines.ts";

export type { ClientFraming, RoomOutput, ServerFraming } from "./framing.ts";

/** The two halves a room uses, from `--frame`, `--clientframe`, `--serverframe`, `--binary` and `--json`. */
export function framingFor(config: Config): { client: ClientFraming; server: ServerFraming } {
  const plain = config.binary ? binaryFraming(config) : linesFraming(config);
  const mode = (frame: Config["clientFrame"]): Framing =>
    frame === "json" ? jsonFraming(config) : frame === "gwsocket" ? gwsocketFraming(config) : plain;
  return { client: mode(config.clientFrame), server: mode(config.serverFrame) };
}
