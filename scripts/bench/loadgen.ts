#!/usr/bin/env bun
/**
 * The load generator: a separate process (so its CPU is not the server's) driving Bun websocket clients.
 * Reads one command per line on stdin (protocol.ts), answers one result per line on stdout, until stdin ends.
 */
import { runChurn } from "./load/churn.ts";
import { runEcho } from "./load/echo.ts";
import { runEndpoints } from "./load/endpoints.ts";
import { runFanout } from "./load/fanout.ts";
import { runMemory } from "./load/memory.ts";
import { runProbe, stopProbe } from "./load/probe.ts";
import { runStorm } from "./load/storm.ts";
import { swarmBroadcast, swarmClose, swarmMixed, swarmOpen } from "./load/swarm.ts";
import type { Command, ProbeStopCommand, Result } from "./protocol.ts";

function run(cmd: Command): Promise<Result> {
  switch (cmd.kind) {
    case "echo":
      return runEcho(cmd);
    case "fanout":
      return runFanout(cmd);
    case "churn":
      return runChurn(cmd);
    case "memory":
      return runMemory(cmd);
    case "swarm-open":
      return swarmOpen(cmd);
    case "swarm-broadcast":
      return swarmBroadcast(cmd);
    case "swarm-mixed":
      return swarmMixed(cmd);
    case "swarm-close":
      return swarmClose();
    case "storm":
      return runStorm(cmd);
    case "probe":
      return runProbe(cmd);
    case "endpoints":
      return runEndpoints(cmd);
  }
}

const decoder = new TextDecoder();
let pending = "";
/** Commands run one at a time, in order; a `probe-stop` line acts at once, so it can end a running probe. */
let queue: Promise<void> = Promise.resolve();
for await (const chunk of Bun.stdin.stream()) {
  pending += decoder.decode(chunk, { stream: true });
  for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n")) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    const cmd = JSON.parse(line) as Command | ProbeStopCommand;
    if (cmd.kind === "probe-stop") {
      stopProbe();
      continue;
    }
    queue = queue.then(async () => {
      let result: Result | { kind: "error"; message: string };
      try {
        result = await run(cmd);
      } catch (err) {
        result = { kind: "error", message: (err as Error).stack ?? String(err) };
      }
      process.stdout.write(`${JSON.stringify(result)}\n`);
    });
  }
}
await queue;
