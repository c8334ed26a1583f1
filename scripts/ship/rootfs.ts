#!/usr/bin/env bun
/**
 * The root filesystem of the scratch image: the binary at /usr/local/bin/scalesocket, the shared libraries
 * `ldd` says it loads, the dynamic loader at the path the binary names for it, and an empty /proc to mount
 * on. Nothing else: no shell, no /etc, no /tmp. The Dockerfile runs this file to build the image's only
 * layer and scripts/ship/container-check.ts runs the same function, so the check tests what the image ships.
 *
 * What a Bun executable needs at run time, found with strace in an empty chroot:
 * - glibc's loader and libc, libpthread, libdl, libm (for linux-x64 and linux-arm64; `ldd` lists them);
 * - /proc mounted: without it Bun aborts at start (`panic: abort() called`, exit 132/134) before running
 *   any JavaScript. Every container runtime mounts it; a bare chroot does not.
 * Read when present and ignored when absent: /etc/localtime (logs are UTC anyway), /sys (cgroup limits),
 * /etc/ld.so.cache (the loader then searches its built-in directories, where the libraries are put).
 *
 * Usage: bun scripts/ship/rootfs.ts <out-dir> [binary]   (binary: dist/scalesocket-<this machine's target>)
 */
import { chmod, copyFile, mkdir, readdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { binaryPath, hostTarget } from "./targets.ts";

/** Where the binary sits in the image: on the default PATH, so derived images can call it by name. */
export const IMAGE_BINARY = "/usr/local/bin/scalesocket";

/**
 * The absolute paths `ldd` resolves for a binary: its libraries and the loader. Empty for a static binary.
 * `ldd` runs the binary's own loader, so it must run on the binary's architecture (the Dockerfile's build
 * stage does).
 */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await Bun.$`ldd ${binary}`.nothrow().quiet();
  const text = `${out.stdout.toString()}${out.stderr.toString()}`;
  if (/not a dynamic executable|statically linked/.test(text)) return [];
  if (out.exitCode !== 0) throw new Error(`ldd ${binary} failed: ${text.trim()}`);
  const paths: string[] = [];
  for (const line of text.split("\n")) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)";
    // linux-vdso.so.1 is the kernel's and has no file.
    if (line.includes("=> not found")) throw new Error(`ldd ${binary}: ${line.trim()}`);
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m?.[1]) paths.push(m[1]);
  }
  return paths;
}

/**
 * Assembles the root filesystem in `out` (which should be empty) and returns the files it holds, relative
 * to `out`. Libraries are copied with symlinks resolved, to the path the loader looks them up by.
 */
export async function assembleRootfs(binary: string, out: string): Promise<string[]> {
  const files: string[] = [];
  // The image's / is 0755; a mkdtemp folder is 0700, which a non-root user could not even enter.
  await chmod(out, 0o755);
  const put = async (from: string, to: string) => {
    await mkdir(dirname(join(out, to)), { recursive: true });
    await copyFile(from, join(out, to));
    await chmod(join(out, to), (await stat(from)).mode & 0o777);
    files.push(to);
  };
  await put(binary, IMAGE_BINARY);
  await chmod(join(out, IMAGE_BINARY), 0o755);
  for (const lib of await sharedLibraries(binary)) await put(lib, lib);
  // The mount point for /proc (a container runtime would create it; a chroot cannot).
  await mkdir(join(out, "proc"), { recursive: true, mode: 0o555 });
  return files.sort();
}

/** Every path under `dir`, files and folders, relative and sorted: what the image holds. */
export async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map((e) => `/${e}`).sort();
}

if (import.meta.main) {
  const [out, binary = join(new URL("../..", import.meta.url).pathname, binaryPath(hostTarget()))] =
    Bun.argv.slice(2);
  if (!out) {
    process.stderr.write("usage: bun scripts/ship/rootfs.ts <out-dir> [binary]\n");
    process.exit(2);
  }
  await mkdir(out, { recursive: true, mode: 0o755 });
  for (const f of await assembleRootfs(binary, out)) console.log(f);
}
