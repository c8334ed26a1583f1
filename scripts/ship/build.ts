#!/usr/bin/env bun
/**
 * `npm run build`: everything a release ships, in `dist/`.
 *
 * - `dist/scalesocket.js`: the Bun-targeted bundle the npm package runs (`bin/scalesocket.js` loads it).
 * - `dist/scalesocket-<target>[.exe]`: a standalone binary per target, with `.sha256` beside it and a release
 *   archive (`.tar.gz`, `.zip` for Windows) holding it with README.md and LICENSE; `dist/SHA256SUMS` lists all.
 * - `dist/npm/`: the packages to publish: `@scalesocket/<target>` per binary (npm `os`/`cpu`/`libc`) and
 *   `scalesocket` itself, which lists them as `optionalDependencies` so `npx scalesocket` needs no Bun.
 *
 * Options: `--target=<list>` (target names, `host` or `all`; default all), `--no-archive` (binaries only, no
 * archives or npm packages), `--bundle` (only `dist/scalesocket.js`: what `npm pack` needs, via `prepack`).
 */
import { mkdir, rm } from "node:fs/promises";
import { isBuiltin } from "node:module";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import pkg from "../../package.json" with { type: "json" };
import { compileBinary } from "./compile.ts";
import { archive, type Built, stageNpm, writeChecksum, writeSums } from "./release.ts";
import { binaryPath, hostTarget, selectTargets, type Target } from "./targets.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const ENTRY = `${ROOT}src/main.ts`;

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    target: { type: "string", multiple: true },
    "no-archive": { type: "boolean", default: false },
    bundle: { type: "boolean", default: false },
  },
});

function fail(message: string): never {
  process.stderr.write(`build: ${message}\n`);
  process.exit(1);
}

/** Bun.build reports some failures in `logs` and throws others; either way, one readable line. */
function describe(err: unknown): string {
  const errors = err instanceof AggregateError ? err.errors : [err];
  return errors.map((e) => (e instanceof Error ? e.message : String(e))).join("; ");
}

/**
 * The first statement of the bundle: `node dist/scalesocket.js` says what is missing in one line instead of
 * failing on the first Bun API with a stack trace (bin/scalesocket.js says the same before ever loading it).
 */
const NODE_GUARD =
  'if(typeof Bun==="undefined"){process.stderr.write("scalesocket needs Bun (https://bun.sh): use `bunx scalesocket`' +
  ', or a standalone binary from the release page.\\n");process.exit(1)}';

/**
 * The npm entry: one minified file for `target: "bun"`, keeping main.ts's `#!/usr/bin/env bun` line (Bun puts
 * the banner after it and its `// @bun` marker). Every package is inlined (checked: only Node built-ins stay
 * imports, and those load under Node before the guard runs), which is why the published package can drop its
 * `dependencies`.
 */
async function bundle(): Promise<void> {
  const result = await Bun.build({
    entrypoints: [ENTRY],
    target: "bun",
    format: "esm",
    minify: true,
    sourcemap: "linked",
    outdir: `${ROOT}dist`,
    naming: "scalesocket.js",
    banner: NODE_GUARD,
    metafile: true,
  });
  if (!result.success) fail(`bundle: ${result.logs.join("; ")}`);
  const meta = (typeof result.metafile === "string" ? JSON.parse(result.metafile) : result.metafile) as {
    inputs: Record<string, { imports: { path: string; external?: boolean }[] }>;
  };
  const external = Object.values(meta.inputs).flatMap((i) => i.imports.filter((x) => x.external));
  const foreign = external.map((x) => x.path).filter((p) => !isBuiltin(p));
  if (foreign.length > 0) fail(`bundle: left imports that are not Node built-ins: ${foreign.join(", ")}`);
  console.log("bundle   dist/scalesocket.js");
}

/** One standalone binary (compile.ts); the `.map` Bun writes beside it is removed, the binary embeds it. */
async function compile(t: Target): Promise<Built> {
  const outfile = `${ROOT}${binaryPath(t)}`;
  const started = performance.now();
  await compileBinary(t.bun, outfile);
  await rm(`${ROOT}dist/scalesocket-${t.name}.map`, { force: true });
  const size = Bun.file(outfile).size;
  return { target: t, path: outfile, size, ms: performance.now() - started };
}

/** Runs `jobs` with at most `width` at a time (gzip is the slow part and uses one core per archive). */
async function pool<T>(jobs: (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await (jobs[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
  return results;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<void> {
  if (values.bundle) {
    await bundle();
    return;
  }
  const explicit = values.target?.flatMap((v) => v.split(",")).filter((v) => v !== "") ?? [];
  let targets: Target[];
  try {
    targets = selectTargets(explicit);
  } catch (err) {
    fail((err as Error).message);
  }
  const host = hostTarget();
  const started = performance.now();
  await rm(`${ROOT}dist`, { recursive: true, force: true });
  await mkdir(`${ROOT}dist`, { recursive: true });
  await bundle();

  // Compiling is mostly I/O (the runtime is copied, the bundle appended), so one at a time is as fast.
  const built: Built[] = [];
  const skipped: string[] = [];
  for (const t of targets) {
    try {
      const b = await compile(t);
      built.push(b);
      console.log(`compile  ${binaryPath(t)}  ${mb(b.size)}  ${b.ms.toFixed(0)} ms`);
    } catch (err) {
      // A foreign target needs its Bun runtime from the npm registry; without it, the others still ship.
      const why = describe(err);
      skipped.push(`${t.name}: ${why}`);
      console.error(`skipped  ${t.name}: Bun could not build it here (${why})`);
    }
  }
  const must = explicit.length > 0 ? targets : [host];
  const missing = must.filter((t) => !built.some((b) => b.target === t));
  if (missing.length > 0) fail(`could not build ${missing.map((t) => t.name).join(", ")}`);

  // The version --version prints is package.json's at build time; check the binary we can run says so.
  const own = built.find((b) => b.target === host);
  if (own) {
    const out = (await Bun.$`${own.path} --version`.env({ NO_COLOR: "1" }).quiet().text()).trim();
    if (out !== `scalesocket ${pkg.version}`) fail(`${own.path} --version printed '${out}'`);
  }

  await Promise.all(built.map((b) => writeChecksum(b.path)));
  if (!values["no-archive"]) {
    const width = Math.max(1, availableParallelism());
    const archives = await pool(
      built.map((b) => () => archive(ROOT, b)),
      width,
    );
    for (const a of archives) console.log(`archive  ${a.slice(ROOT.length)}  ${mb(Bun.file(a).size)}`);
    await Promise.all(archives.map((a) => writeChecksum(a)));
    await stageNpm(ROOT, built);
    console.log(`npm      dist/npm/ (${built.length} platform packages and scalesocket)`);
  }
  await writeSums(`${ROOT}dist`);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`built ${built.length} of ${targets.length} targets in ${seconds} s`);
  if (skipped.length > 0) console.log(`skipped: ${skipped.join("; ")}`);
}

await main();
