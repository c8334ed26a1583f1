/**
 * The smoke test a release must pass, run the way a user runs the program: as a separate process with
 * NO_COLOR=1, checking exit codes and output. It runs against the source (`bun src/main.ts`) and, when
 * `npm run build` has made it, the standalone binary for this machine, so both are held to the same test.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { binaryPath, hostTarget } from "../../scripts/ship/targets.ts";
import { killSpawned, spawnServer, TestClient, WAIT_MS, within } from "../helpers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const BINARY = join(ROOT, binaryPath(hostTarget()));
const BUILT = existsSync(BINARY);
if (!BUILT) {
  console.warn(
    `e2e-binary: ${binaryPath(hostTarget())} is not built, so only the source is tested (npm run build)`,
  );
}

const RUNS: { name: string; argv: string[]; skip: boolean }[] = [
  { name: "source", argv: [process.execPath, join(ROOT, "src/main.ts")], skip: false },
  { name: "binary", argv: [BINARY], skip: !BUILT },
];

const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" };

const running = new Set<ReturnType<typeof Bun.spawn>>();
afterEach(async () => {
  for (const p of running) p.kill("SIGKILL");
  await within(Promise.all([...running].map((p) => p.exited)), "processes to exit");
  running.clear();
  await killSpawned();
});

/** Starts a server on a free port; resolves at its `listening on` line, fails at once if it exits first. */
const serve = (argv: string[], cwd = ROOT) => spawnServer(argv, { cwd, env: ENV });

/** Runs to completion (bounded) and returns what it printed and its exit code. */
async function run(argv: string[], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(argv, { cwd, env: ENV, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  running.add(proc);
  const [code, stdout, stderr] = await within(
    Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]),
    `${argv.join(" ")} to exit`,
  );
  running.delete(proc);
  return { code, stdout, stderr };
}

describe.each(RUNS)("$name", ({ name, argv, skip }) => {
  test.skipIf(skip)("--version prints the package.json version and exits 0", async () => {
    const r = await run([...argv, "--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`scalesocket ${pkg.version}\n`);
  });

  test.skipIf(skip)("--help lists the flags, without colour, and exits 0", async () => {
    const r = await run([...argv, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--addr");
    expect(r.stdout).toContain("--passenv");
    expect(r.stdout).toContain("Usage: scalesocket [OPTIONS] <CMD>");
    expect(r.stdout).not.toContain("\x1b[");
  });

  test.skipIf(skip)("a bad flag is one error line and the usage line, exit 2", async () => {
    const r = await run([...argv, "--no-such-flag", "cat"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(2);
    expect(r.stderr).toContain("--no-such-flag");
  });

  test.skipIf(skip)("websocket round trip through cat, /health, then SIGTERM exits 0", async () => {
    const s = await serve([...argv, "--addr", "127.0.0.1:0", "cat"]);
    const health = await within(fetch(`http://127.0.0.1:${s.port}/health`), "/health");
    expect(await health.json()).toEqual({ status: "ok" });
    const client = await TestClient.open(`ws://127.0.0.1:${s.port}/smoke`);
    client.send("hello from the smoke test");
    expect(await client.next()).toBe("hello from the smoke test");
    client.close();
    await client.waitClosed();
    s.proc.kill("SIGTERM");
    expect(await within(s.proc.exited, "exit after SIGTERM", WAIT_MS)).toBe(0);
  });

  // Only the binary: `bun src/main.ts` is Bun itself, which loads both by design. Not declared for the source
  // run at all (rather than skipped), so a skip always means "the binary is not built" (see .ci/run).
  if (name === "source") return;
  test.skipIf(skip)(".env and bunfig.toml in the working directory are not loaded", async () => {
    // A standalone binary would load both unless built with autoloadDotenv/autoloadBunfig off: a variable
    // from .env could then reach the child through --passenv, and a bunfig preload would run in the server.
    const dir = mkdtempSync(join(tmpdir(), "scalesocket-e2e-"));
    try {
      writeFileSync(join(dir, ".env"), "SCALESOCKET_FROM_DOTENV=leaked\n");
      writeFileSync(join(dir, "bunfig.toml"), 'preload = ["./missing-preload.ts"]\n');
      const s = await serve([...argv, "--addr", "127.0.0.1:0", "--passenv=SCALESOCKET_*", "printenv"], dir);
      const client = await TestClient.open(`ws://127.0.0.1:${s.port}/env`);
      await client.waitClosed();
      const names = client.received.map((m) => String(m).split("=")[0]);
      expect(names).toContain("ROOM");
      expect(names).not.toContain("SCALESOCKET_FROM_DOTENV");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
