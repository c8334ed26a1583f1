#!/usr/bin/env bun
/**
 * Checks the npm package as users get it, without publishing: `npm pack` (which bundles through `prepack`),
 * then the tarball run by `bunx` serves `--version`, and the same package's command under plain Node fails with
 * one line saying it needs Bun (no stack trace). The same steps the release workflow runs, for `.ci/run`.
 * Usage: bun scripts/ship/pack-check.ts
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "bun";
import pkg from "../../package.json" with { type: "json" };

const root = join(import.meta.dir, "../..");
const work = await mkdtemp(join(tmpdir(), "scalesocket-pack-"));
const fail = (why: string): never => {
  process.stderr.write(`pack-check: ${why}\n`);
  process.exit(1);
};

try {
  await $`npm pack --silent --pack-destination ${work}`.cwd(root).quiet();
  const tgz = (await readdir(work)).find((f) => f.endsWith(".tgz"));
  if (tgz === undefined) fail("npm pack made no tarball");
  const tarball = join(work, tgz as string);

  // bunx installs the tarball into its own cache and runs its bin, as `bunx scalesocket` does from the registry.
  const path = `${join(root, "node_modules/.bin")}:${process.env.PATH ?? ""}`;
  const viaBunx = await $`bunx --package ${tarball} scalesocket --version`
    .cwd(work)
    .env({ ...process.env, PATH: path })
    .nothrow()
    .quiet();
  const version = viaBunx.stdout.toString().trim();
  if (viaBunx.exitCode !== 0 || version !== `scalesocket ${pkg.version}`) {
    fail(
      `bunx --package ${tgz} scalesocket --version gave exit ${viaBunx.exitCode}: ${version} ${viaBunx.stderr}`,
    );
  }

  await $`tar -xzf ${tarball} -C ${work}`.quiet();
  const viaNode = await $`node ${join(work, "package/bin/scalesocket.js")} --version`.nothrow().quiet();
  const lines = viaNode.stderr.toString().trimEnd().split("\n");
  if (viaNode.exitCode === 0 || lines.length !== 1 || !lines[0]?.includes("needs Bun")) {
    fail(`under node: exit ${viaNode.exitCode}, stderr ${JSON.stringify(viaNode.stderr.toString())}`);
  }
  process.stdout.write(`pack-check: ${tgz} runs under bunx (${version}); under node: "${lines[0]}"\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
