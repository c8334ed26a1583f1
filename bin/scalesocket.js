#!/usr/bin/env bun
// The `scalesocket` command of the npm package. Plain JavaScript that any Node parses, because it is what
// Node meets first when someone runs the package without Bun:
//
// - under Bun (`bunx scalesocket`, or the shebang above) it loads the bundle `dist/scalesocket.js` (made by
//   `npm run build` and `prepack`), or, in a clone that was never built, `src/main.ts`;
// - under Node it runs the standalone binary from the platform package (`@scalesocket/<os>-<arch>`) when the
//   published package installed one as an optional dependency (its copy of this file starts with
//   `#!/usr/bin/env node` so that `npx` can start it at all); without one it says, in one line, that it
//   needs Bun, and exits 1. Node never loads the bundle: it is written for Bun's APIs.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";

const NEEDS_BUN =
  "scalesocket needs Bun (https://bun.sh) to run from npm: use `bunx scalesocket`, or a standalone binary " +
  "from the release page, which needs neither Bun nor Node.";

/** The names the platform package may have here, most likely first. */
function platformPackages() {
  const os = process.platform === "win32" ? "windows" : process.platform;
  const base = `@scalesocket/${os}-${process.arch}`;
  if (process.platform !== "linux") return [base];
  // Node reports the glibc it runs on; none means musl (Alpine), whose package is the -musl one.
  const glibc = process.report?.getReport?.()?.header?.glibcVersionRuntime;
  return glibc ? [base, `${base}-musl`] : [`${base}-musl`, base];
}

/** The path of the installed platform binary, or null. */
function platformBinary() {
  const require = createRequire(import.meta.url);
  const file = process.platform === "win32" ? "bin/scalesocket.exe" : "bin/scalesocket";
  for (const name of platformPackages()) {
    try {
      return require.resolve(`${name}/${file}`);
    } catch {}
  }
  return null;
}

/** Runs the binary in this process's place: same stdio, signals passed on, its exit status ours. */
function runBinary(binary) {
  const args = process.argv.slice(2);
  // Node 23.11+ can replace the process outright, the cleanest for signals and exit codes.
  if (typeof process.execve === "function" && process.platform !== "win32") {
    try {
      process.execve(binary, [binary, ...args], process.env);
    } catch {
      // Not replaced (not executable, say): spawning it below reports why.
    }
  }
  const child = spawn(binary, args, { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => child.kill(signal));
  }
  child.on("error", (err) => {
    process.stderr.write(`scalesocket: cannot run ${binary}: ${err.message}\n`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
}

if (typeof Bun !== "undefined") {
  const bundle = new URL("../dist/scalesocket.js", import.meta.url);
  const entry = existsSync(bundle) ? bundle : new URL("../src/main.ts", import.meta.url);
  await import(entry.href);
} else {
  const binary = platformBinary();
  if (binary) {
    runBinary(binary);
  } else {
    process.stderr.write(`${NEEDS_BUN}\n`);
    process.exit(1);
  }
}
