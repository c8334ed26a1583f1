/**
 * One standalone binary of scalesocket, compiled the way releases are: `npm run build` (scripts/ship/build.ts) makes
 * them in `dist/`, and the benchmark makes one for this machine from the checkout it runs in.
 */

const ENTRY = new URL("../../src/main.ts", import.meta.url).pathname;

/**
 * Compiles `src/main.ts` for a Bun target (a Target's `bun`, see targets.ts) to `outfile`; throws when Bun cannot (an
 * AggregateError of its logs, or what Bun.build threw). `bytecode` (which needs ESM for main.ts's top-level
 * await) moves parsing to build time: start-up drops from about 30 ms to under 20 ms here. The source map is
 * embedded in the binary (stack traces name src/ files); the `.map` Bun also writes beside it is not needed.
 */
export async function compileBinary(bunTarget: Bun.Build.CompileTarget, outfile: string): Promise<void> {
  const result = await Bun.build({
    entrypoints: [ENTRY],
    format: "esm",
    minify: true,
    sourcemap: "linked",
    bytecode: true,
    compile: {
      target: bunTarget,
      outfile,
      // Without these the binary reads .env and bunfig.toml from the user's working directory at run time,
      // and their variables could reach children through --passenv.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
  });
  if (!result.success) throw new AggregateError(result.logs, result.logs.join("; "));
}
