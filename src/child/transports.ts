import type { Config } from "../config.ts";
import type { Transport } from "./link.ts";
import { ptyTransport } from "./pty.ts";
import { stdioTransport } from "./stdio.ts";
import { tcpTransport } from "./tcp.ts";

/**
 * The transport a room's child talks over: a TCP socket (`--tcp`, on the room's port), a pseudo-terminal
 * (`--pty`), or stdio pipes. A new transport is one file beside these and one arm here.
 */
export function transportFor(config: Config, tcpPort: number | null): Transport {
  if (tcpPort !== null) return tcpTransport(tcpPort, config.tcpTimeoutMs, config.osPipes);
  if (config.pty !== null) return ptyTransport(config.pty);
  return stdioTransport(config.osPipes);
}
