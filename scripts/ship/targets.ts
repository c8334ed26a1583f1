/** The platforms scalesocket ships binaries for, and the names each one goes by. */

export interface Target {
  /** Our name: `dist/scalesocket-<name>`, the release archive and the npm package `@scalesocket/<name>`. */
  name: string;
  /** What `Bun.build({ compile: { target } })` calls it. */
  bun: Bun.Build.CompileTarget;
  /** npm's `os` and `cpu` values (Node's `process.platform` and `process.arch`). */
  os: "linux" | "darwin" | "win32";
  cpu: "x64" | "arm64";
  /** npm's `libc`, Linux only: npm skips a glibc package on musl (Alpine) and the other way round. */
  libc?: "glibc" | "musl";
  /** `.exe` on Windows. */
  ext: string;
  /** `.tar.gz`, or `.zip` on Windows where that is what people can open. */
  archive: ".tar.gz" | ".zip";
}

function target(
  name: string,
  bun: Bun.Build.CompileTarget,
  os: Target["os"],
  cpu: Target["cpu"],
  libc?: Target["libc"],
): Target {
  const windows = os === "win32";
  return { name, bun, os, cpu, libc, ext: windows ? ".exe" : "", archive: windows ? ".zip" : ".tar.gz" };
}

/**
 * Every target Bun can cross-compile to. Bun fetches the runtime for a foreign target from the npm registry
 * (`@oven/bun-<os>-<arch>`, cached in `~/.bun/install/cache`), so one Linux machine builds them all.
 */
export const TARGETS: readonly Target[] = [
  target("linux-x64", "bun-linux-x64", "linux", "x64", "glibc"),
  target("linux-arm64", "bun-linux-arm64", "linux", "arm64", "glibc"),
  target("linux-x64-musl", "bun-linux-x64-musl", "linux", "x64", "musl"),
  target("linux-arm64-musl", "bun-linux-arm64-musl", "linux", "arm64", "musl"),
  target("darwin-x64", "bun-darwin-x64", "darwin", "x64"),
  target("darwin-arm64", "bun-darwin-arm64", "darwin", "arm64"),
  target("windows-x64", "bun-windows-x64", "win32", "x64"),
  target("windows-arm64", "bun-windows-arm64", "win32", "arm64"),
];

/** The target of the machine this runs on (glibc or musl is told by the loader Bun itself was linked with). */
export function hostTarget(): Target {
  const os = process.platform === "win32" ? "windows" : process.platform;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const musl = process.platform === "linux" && !report?.header?.glibcVersionRuntime;
  const name = `${os}-${process.arch}${musl ? "-musl" : ""}`;
  const found = TARGETS.find((t) => t.name === name);
  if (!found) throw new Error(`no scalesocket target for this machine (${name})`);
  return found;
}

/** Resolves `--target` values: target names, `host`, or `all`. Unknown names are an error listing the known. */
export function selectTargets(names: readonly string[]): Target[] {
  if (names.length === 0 || names.includes("all")) return [...TARGETS];
  return names.map((n) => {
    if (n === "host") return hostTarget();
    const found = TARGETS.find((t) => t.name === n);
    if (!found)
      throw new Error(`unknown target '${n}' (known: host, all, ${TARGETS.map((t) => t.name).join(", ")})`);
    return found;
  });
}

/** `dist/scalesocket-<name>[.exe]`, relative to the repository. */
export function binaryPath(t: Target): string {
  return `dist/scalesocket-${t.name}${t.ext}`;
}
