/** What `scripts/ship/build.ts` makes of the compiled binaries: checksums, release archives, npm packages. */
import { chmod, copyFile, link, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import type { Target } from "./targets.ts";

export interface Built {
  target: Target;
  /** Absolute path of the binary. */
  path: string;
  size: number;
  ms: number;
}

/** The hex SHA-256 of a file, streamed (the binaries are about 100 MiB each). */
export async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

/** Writes `<path>.sha256` in `sha256sum` format, so `sha256sum -c scalesocket-linux-x64.sha256` checks it. */
export async function writeChecksum(path: string): Promise<void> {
  await writeFile(`${path}.sha256`, `${await sha256(path)}  ${basename(path)}\n`);
}

/** `dir/SHA256SUMS`: every `.sha256` in `dir`, one line each, sorted, for a release page. */
export async function writeSums(dir: string): Promise<void> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".sha256")).sort();
  const lines = await Promise.all(names.map((n) => Bun.file(`${dir}/${n}`).text()));
  await writeFile(`${dir}/SHA256SUMS`, lines.join(""));
}

/** Seconds since the epoch of the last commit, so two builds of one commit give the same tar bytes. */
async function sourceDate(root: string): Promise<string> {
  if (process.env.SOURCE_DATE_EPOCH) return process.env.SOURCE_DATE_EPOCH;
  const git = await Bun.$`git -C ${root} log -1 --format=%ct`.quiet().nothrow();
  return git.exitCode === 0 ? git.text().trim() : String(Math.floor(Date.now() / 1000));
}

/**
 * `dist/scalesocket-<target>.tar.gz` (`.zip` for Windows) holding one folder `scalesocket-<target>/` with the
 * binary (named `scalesocket`, or `scalesocket.exe`), README.md and LICENSE. Returns the archive's path.
 */
export async function archive(root: string, built: Built): Promise<string> {
  const t = built.target;
  const folder = `scalesocket-${t.name}`;
  const stage = `${root}dist/.stage-${t.name}`;
  await rm(stage, { recursive: true, force: true });
  await mkdir(`${stage}/${folder}`, { recursive: true });
  await link(built.path, `${stage}/${folder}/scalesocket${t.ext}`);
  await copyFile(`${root}README.md`, `${stage}/${folder}/README.md`);
  await copyFile(`${root}LICENSE`, `${stage}/${folder}/LICENSE`);
  const out = `${root}dist/${folder}${t.archive}`;
  if (t.archive === ".zip") {
    await Bun.$`zip -q -X -r ${out} ${folder}`.cwd(stage);
  } else {
    const mtime = `@${await sourceDate(root)}`;
    await Bun.$`tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=${mtime} -cf - ${folder} | gzip -n > ${out}`.cwd(
      stage,
    );
  }
  await rm(stage, { recursive: true, force: true });
  return out;
}

interface PackageJson {
  name: string;
  version: string;
  description?: string;
  license?: string;
  repository?: unknown;
  homepage?: string;
  bin?: Record<string, string>;
  files?: string[];
  [key: string]: unknown;
}

const OS_NAMES: Readonly<Record<Target["os"], string>> = {
  linux: "Linux",
  darwin: "macOS",
  win32: "Windows",
};

/** `@scalesocket/<target>`: the npm name of a target's binary package. */
export function platformPackage(t: Target): string {
  return `@scalesocket/${t.name}`;
}

/**
 * Stages the npm packages in `dist/npm/`:
 *
 * - `dist/npm/<target>/`: `@scalesocket/<target>`, the binary alone, with npm's `os`, `cpu` (and `libc`), so
 *   npm installs only the one that fits the machine.
 * - `dist/npm/scalesocket/`: the package itself, as `npm pack` of the repository gives it, plus those
 *   packages as `optionalDependencies`, and with `bin/scalesocket.js` started by `node`: under Node it runs
 *   the platform binary, under Bun (`bunx`) the bundle. The bundle has every dependency inlined, so the
 *   published package has no `dependencies`.
 */
export async function stageNpm(root: string, built: readonly Built[]): Promise<void> {
  const pkg = (await Bun.file(`${root}package.json`).json()) as PackageJson;
  const npm = `${root}dist/npm`;
  await rm(npm, { recursive: true, force: true });
  // npm's provenance (the release workflow publishes with --provenance) requires `repository` to name the
  // repository the workflow runs in; package.json has none, so a CI build fills it in.
  const repository =
    pkg.repository ??
    (process.env.GITHUB_REPOSITORY
      ? { type: "git", url: `git+https://github.com/${process.env.GITHUB_REPOSITORY}.git` }
      : undefined);
  const common = { version: pkg.version, license: pkg.license, repository, homepage: pkg.homepage };

  for (const b of built) {
    const t = b.target;
    const dir = `${npm}/${t.name}`;
    await mkdir(`${dir}/bin`, { recursive: true });
    await link(b.path, `${dir}/bin/scalesocket${t.ext}`);
    await chmod(`${dir}/bin/scalesocket${t.ext}`, 0o755);
    await copyFile(`${root}LICENSE`, `${dir}/LICENSE`);
    const what = `${OS_NAMES[t.os]} ${t.cpu}${t.libc ? ` (${t.libc})` : ""}`;
    await writeFile(
      `${dir}/README.md`,
      `# ${platformPackage(t)}\n\nThe standalone scalesocket binary for ${what}. Install \`scalesocket\`, not this:\n` +
        "it lists this package as an optional dependency and runs the binary from it when Bun is not there.\n",
    );
    const manifest = {
      name: platformPackage(t),
      ...common,
      description: `The scalesocket binary for ${what}`,
      os: [t.os],
      cpu: [t.cpu],
      ...(t.libc ? { libc: [t.libc] } : {}),
      files: ["bin/"],
      preferUnplugged: true,
    };
    await writeFile(`${dir}/package.json`, `${JSON.stringify(manifest, null, 2)}\n`);
  }

  const main = `${npm}/scalesocket`;
  await mkdir(`${main}/bin`, { recursive: true });
  await mkdir(`${main}/dist`, { recursive: true });
  const guard = await Bun.file(`${root}bin/scalesocket.js`).text();
  // The only change to the file: `npx` on a machine without Bun must be able to start it at all.
  await writeFile(`${main}/bin/scalesocket.js`, guard.replace(/^#!.*\n/, "#!/usr/bin/env node\n"), {
    mode: 0o755,
  });
  for (const f of ["dist/scalesocket.js", "dist/scalesocket.js.map", "README.md", "LICENSE"]) {
    await copyFile(`${root}${f}`, `${main}/${f}`);
  }
  const { scripts: _s, devDependencies: _d, dependencies: _deps, optionalDependencies: _o, ...rest } = pkg;
  const manifest = {
    ...rest,
    ...(repository ? { repository } : {}),
    optionalDependencies: Object.fromEntries(built.map((b) => [platformPackage(b.target), pkg.version])),
  };
  await writeFile(`${main}/package.json`, `${JSON.stringify(manifest, null, 2)}\n`);
}
