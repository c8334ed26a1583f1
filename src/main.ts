#!/usr/bin/env bun
import { helpText, resolveCli, UsageError, usageErrorText, useColor } from "./cli/index.ts";
import { createLogger } from "./log.ts";
import { serve } from "./server.ts";
import { VERSION } from "./version.ts";

/** The command: argv → Config → server, and the process's exit code. */
async function main(argv: readonly string[]): Promise<number> {
  let action: ReturnType<typeof resolveCli>;
  try {
    action = resolveCli(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(usageErrorText(err));
    return 2;
  }
  if (action.kind === "help") {
    process.stdout.write(helpText({ color: useColor(process.stdout.isTTY, process.env) }));
    return 0;
  }
  if (action.kind === "version") {
    process.stdout.write(`scalesocket ${VERSION}\n`);
    return 0;
  }
  const { config } = action;
  const log = createLogger(config.log, config.verbosity);
  let server: ReturnType<typeof serve>;
  try {
    server = serve(config, log);
  } catch (err) {
    log.error(`cannot listen on ${config.hostname}:${config.port}: ${(err as Error).message}`);
    return 1;
  }
  log.info(
    `listening on ${server.hostname}:${server.port}, wrapping ${[config.cmd, ...config.args].join(" ")}`,
  );
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      log.info(`${signal}: stopping children, then closing clients`);
      void server.stop();
    });
  }
  // Its default would end the server with no close frames and no child stopped. Bun cannot swap a running
  // server's TLS certificate (server.reload keeps the old one), so there is nothing to reload.
  process.on("SIGHUP", () => log.info("SIGHUP: ignored (restart the server to reload its certificates)"));
  await server.finished;
  return 0;
}

process.exit(await main(process.argv.slice(2)));
