import type { Link, Transport } from "./link.ts";
import { spawnWithPipes } from "./spawn.ts";

/**
 * The default transport: the child's stdin and stdout are its link, its stderr goes to the log. `osPipes` chooses
 * plain OS pipes (see pipes.ts) over Bun's own where libc can be loaded.
 */
export function stdioTransport(osPipes: boolean): Transport {
  return {
    inputEnds: true,
    start(command) {
      const spawned = spawnWithPipes(command, true, osPipes);
      const stdin = spawned.stdin as NonNullable<typeof spawned.stdin>;
      let link: Link | null = null;
      return {
        process: spawned.process,
        logs: { stderr: spawned.stderr, stdout: null },
        // A pipe is there from the start: attaching cannot fail, and is not cut short by a stop, so what
        // clients sent still reaches the child before its EOF.
        attach: async () => {
          link ??= { input: stdin(), output: spawned.stdout, endStopsChild: false };
          return link;
        },
      };
    },
  };
}
