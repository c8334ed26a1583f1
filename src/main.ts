#!/usr/bin/env bun
import { ptyUnsupported } from "./child/pty.ts";
import { helpText, resolveCli, UsageError, usageErrorText, useColor } from "./cli/index.ts";
import { connectStore, type Store } from "./cluster/store.ts";
import { passEnvFilter, passedEnv } from "./env.ts";
import { createLogger } from "./log.ts";
import { serve } from "./server.ts";
import { commandWarnings, startupUrls } from "./startup.ts";
import { claimUnixSocket, removeOnExit } from "./unixsocket.ts";
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
  const noPty = config.pty === null ? null : ptyUnsupported();
  if (noPty !== null) {
    log.error(noPty);
    return 1;
  }
  const where = config.unixPath === null ? `${config.hostname}:${config.port}` : `unix:${config.unixPath}`;
  // A cluster node that cannot reach its directory cannot tell which rooms are its own: it does not start.
  let store: Store | null = null;
  if (config.cluster !== null) {
    try {
      store = await connectStore(config.cluster.url, Math.min(3000, config.cluster.leaseMs / 4));
    } catch (err) {
      log.error((err as Error).message);
      return 1;
    }
  }
  let server: ReturnType<typeof serve>;
  try {
    if (config.unixPath !== null) await claimUnixSocket(config.unixPath);
    server = serve(config, log, store);
  } catch (err) {
    log.error(`cannot listen on ${where}: ${(err as Error).message}`);
    return 1;
  }
  // Before the listening line, so whoever waits for that line has seen the warning too.
  if (
    !isLoopback(config.hostname) &&
    config.unixPath === null &&
    config.origins === null &&
    config.auth === null
  ) {
    log.warn(
      `bound to ${config.hostname}, not loopback, with neither --origin nor an auth flag: any web page can connect (docs/security.md)`,
    );
  }
  if (config.unixPath !== null) removeOnExit(config.unixPath);
  const listening =
    server.unixPath === null ? `${server.hostname}:${server.port}` : `unix:${server.unixPath}`;
  const passed = passedEnv(passEnvFilter(config.passEnv), process.env);
  for (const warning of commandWarnings(config.cmd, config.args, config.pty !== null, passed))
    log.warn(warning);
  log.info(`listening on ${listening}, wrapping ${[config.cmd, ...config.args].join(" ")}`);
  if (server.unixPath === null) {
    const [ws, page] = startupUrls(
      server.hostname,
      server.port,
      config.staticDir !== null || config.devConsole,
    );
    log.info(`clients connect to ${ws}${page === undefined ? "" : `; the page is at ${page}`}`);
  }
  let signalled = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      // --drain: the first SIGTERM drains; a second signal, or SIGINT, stops at once.
      if (signal === "SIGTERM" && config.drainMs !== null && !signalled) {
        signalled = true;
        log.info(`${signal}: draining for up to ${config.drainMs / 1000} s (--drain)`);
        void server.drain(config.drainMs);
        return;
      }
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

/** Whether only this host can reach an address: a page elsewhere cannot reach the server at all. */
function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

process.exit(await main(process.argv.slice(2)));
