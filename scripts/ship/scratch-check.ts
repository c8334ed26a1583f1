#!/usr/bin/env bun
/**
 * Checks the scratch image without a Docker engine: assembles the image's root filesystem in a folder (the
 * same function the Dockerfile runs), adds one child program as /bin/cat, and runs the
 * binary in it the way a container runtime would: new mount and PID namespaces (`unshare`), /proc mounted,
 * `chroot` into the folder as the image's user (nobody, 65534), an environment of PATH alone. Then, from
 * outside, it proves:
 *
 * 1. without /proc the binary aborts (why the image's runtime must mount it, and every runtime does);
 * 2. `--version` works in the root filesystem;
 * 3. the server runs as PID 1 of its namespace, rooted in the folder, and answers /health and a websocket
 *    round trip through `cat` from outside;
 * 4. SIGTERM to it (what `docker stop` sends PID 1) ends it with exit code 0.
 *
 * The child is a static busybox (Debian: `apt-get install busybox-static`) if the host has one, else the
 * host's own `cat` when the libraries it links are all in the image already (glibc's `cat` links libc alone),
 * so the folder never holds a file the image lacks besides the child itself.
 *
 * Needs root (namespaces, chroot), `unshare` and `chroot` (util-linux, coreutils). Uses
 * dist/scalesocket-linux-<arch>, building it if missing.
 * Usage: bun scripts/ship/scratch-check.ts
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { assembleRootfs, IMAGE_BINARY, listTree, sharedLibraries } from "./rootfs.ts";
import { binaryPath, hostTarget } from "./targets.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
/** The image's PATH and user (the Dockerfile's ENV PATH and USER). */
const CONTAINER_PATH = "/usr/local/bin:/usr/bin:/bin";
const CONTAINER_USER = "65534:65534";
const WAIT_MS = 10_000;

function fail(message: string): never {
  process.stderr.write(`scratch-check: FAIL: ${message}\n`);
  process.exit(1);
}

function ok(message: string): void {
  console.log(`ok  ${message}`);
}

/** Rejects after `ms` naming what was awaited; every wait here is bounded. */
async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function tool(name: string, hint: string): string {
  const path = Bun.which(name, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` });
  if (!path) fail(`${name} not found (${hint})`);
  return path;
}

/**
 * The child program for the check: a static busybox (which runs the applet its file is named after), or the
 * host's `cat` if every library it needs is in the image already. Throws when neither fits.
 */
async function childProgram(image: readonly string[]): Promise<{ path: string; what: string }> {
  for (const path of ["/bin/busybox", "/usr/bin/busybox", Bun.which("busybox")]) {
    if (path && existsSync(path) && (await sharedLibraries(path)).length === 0) {
      return { path, what: `static busybox (${path})` };
    }
  }
  const cat = Bun.which("cat");
  if (cat) {
    const libs = await sharedLibraries(cat);
    if (libs.every((lib) => image.includes(lib)))
      return { path: cat, what: `the host's ${cat}, linking ${libs.join(", ")}` };
  }
  throw new Error("no child program: install a static busybox (Debian: apt-get install busybox-static)");
}

const running = new Set<Subprocess>();

/** `unshare … chroot <rootfs> <argv>` with nothing but PATH in the environment, as a container starts. */
function contained(rootfs: string, argv: string[], withProc: boolean): Subprocess<"ignore", "pipe", "pipe"> {
  const unshare = tool("unshare", "util-linux");
  const chroot = tool("chroot", "coreutils");
  const ns = [
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    ...(withProc ? [`--mount-proc=${rootfs}/proc`] : []),
  ];
  const proc = Bun.spawn([unshare, ...ns, chroot, `--userspec=${CONTAINER_USER}`, rootfs, ...argv], {
    env: { PATH: CONTAINER_PATH },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  running.add(proc);
  return proc;
}

/** Collects a stream's text as it comes; `wait(re)` resolves with the first match. */
function reader(stream: ReadableStream<Uint8Array>) {
  let text = "";
  const waiters: (() => void)[] = [];
  const done = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      for (const w of waiters.splice(0)) w();
    }
    for (const w of waiters.splice(0)) w();
  })();
  return {
    text: () => text,
    done,
    async wait(re: RegExp): Promise<RegExpExecArray> {
      for (;;) {
        const m = re.exec(text);
        if (m) return m;
        const more = new Promise<void>((resolve) => waiters.push(resolve));
        if ((await Promise.race([more.then(() => "more"), done.then(() => "end")])) === "end") {
          const last = re.exec(text);
          if (last) return last;
          throw new Error(`output ended without ${re}: ${text}`);
        }
      }
    },
  };
}

/** Runs a contained command to its end (bounded) and returns its exit code and output. */
async function runContained(rootfs: string, argv: string[], withProc: boolean) {
  const proc = contained(rootfs, argv, withProc);
  const out = reader(proc.stdout);
  const err = reader(proc.stderr);
  const code = await within(proc.exited, `${argv.join(" ")} to exit`).catch((e) => {
    proc.kill("SIGKILL");
    throw e;
  });
  await Promise.all([out.done, err.done]);
  running.delete(proc);
  return { code, stdout: out.text(), stderr: err.text() };
}

/** The children of each thread of `pid`, from the host's /proc: a child is listed under the thread that forked it. */
async function childrenByThread(pid: number): Promise<{ tid: number; child: number }[]> {
  const found: { tid: number; child: number }[] = [];
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const list = (await readFile(`/proc/${pid}/task/${tid}/children`, "utf8")).trim();
    for (const child of list ? list.split(" ") : []) found.push({ tid: Number(tid), child: Number(child) });
  }
  return found;
}

/**
 * One websocket message through `cat` and back, from outside the container; `whileOpen` runs after the reply,
 * while the child still runs.
 */
async function roundTrip(port: number, whileOpen: () => Promise<void> = async () => {}): Promise<string> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/scratch`);
  const sent = "hello from outside the chroot";
  const got = await within(
    new Promise<string>((resolve, reject) => {
      ws.onopen = () => ws.send(sent);
      ws.onmessage = (e) => resolve(String(e.data));
      ws.onerror = () => reject(new Error("websocket error"));
      ws.onclose = (e) => reject(new Error(`closed before a message: ${e.code} ${e.reason}`));
    }),
    "the websocket round trip",
  );
  ws.onclose = null;
  try {
    await whileOpen();
  } finally {
    ws.close();
  }
  if (got !== sent) throw new Error(`sent '${sent}', got '${got}'`);
  return got;
}

async function check(rootfs: string, binary: string): Promise<void> {
  const files = await assembleRootfs(binary, rootfs);
  // The child program of the check, and the only file the image does not have.
  const child = await childProgram(files);
  await mkdir(join(rootfs, "bin"));
  await copyFile(child.path, join(rootfs, "bin/cat"));
  console.log(`root filesystem (${rootfs}):`);
  for (const path of await listTree(rootfs)) console.log(`  ${path}`);
  ok(`image files: ${files.join(", ")}`);
  ok(`child program /bin/cat: ${child.what}`);

  const noProc = await runContained(rootfs, [IMAGE_BINARY, "--version"], false);
  if (noProc.code === 0)
    throw new Error("the binary started without /proc; the documented requirement is out of date");
  ok(
    `without /proc it aborts (exit ${noProc.code}: ${/panic[^\n]*/.exec(noProc.stderr)?.[0] ?? "no panic line"})`,
  );

  const version = await runContained(rootfs, [IMAGE_BINARY, "--version"], true);
  if (version.code !== 0 || !version.stdout.startsWith("scalesocket ")) {
    throw new Error(`--version in the chroot: exit ${version.code}, ${version.stdout}${version.stderr}`);
  }
  ok(`--version in the chroot: ${version.stdout.trim()}`);

  const server = contained(rootfs, [IMAGE_BINARY, "--addr", "127.0.0.1:0", "cat"], true);
  const log = reader(server.stderr);
  void reader(server.stdout).done;
  const port = Number((await within(log.wait(/listening on 127\.0\.0\.1:(\d+)/), "the listening line"))[1]);
  ok(`listening on 127.0.0.1:${port}`);

  // The server is unshare's child on the host side; see it from the host's /proc.
  const children = (await readFile(`/proc/${server.pid}/task/${server.pid}/children`, "utf8")).trim();
  const hostPid = Number(children.split(" ")[0]);
  const status = await readFile(`/proc/${hostPid}/status`, "utf8");
  const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
  if (nspid.at(-1) !== "1") throw new Error(`expected PID 1 in its namespace, NSpid is ${nspid.join(" ")}`);
  const seenRoot = await readlink(`/proc/${hostPid}/root`);
  if (seenRoot !== (await realpath(rootfs))) throw new Error(`its root is ${seenRoot}, not the folder`);
  const uid = /^Uid:\s*(\d+)/m.exec(status)?.[1];
  if (uid !== CONTAINER_USER.split(":")[0]) throw new Error(`it runs as uid ${uid}`);
  ok(`runs as PID 1 of a new PID namespace (host pid ${hostPid}), uid ${uid}, root ${seenRoot}`);

  const health = await within(
    fetch(`http://127.0.0.1:${port}/health`).then((r) => r.text()),
    "/health",
  );
  if (health !== '{"status":"ok"}') throw new Error(`/health answered ${health}`);
  ok(`GET /health from outside: ${health}`);

  let plumbing = "";
  await roundTrip(port, async () => {
    const children = await childrenByThread(hostPid);
    if (children.length !== 1) throw new Error(`expected one child, found ${JSON.stringify(children)}`);
    const { tid, child } = children[0] as { tid: number; child: number };
    const stdio = await Promise.all([0, 1, 2].map((fd) => readlink(`/proc/${child}/fd/${fd}`)));
    if (!stdio.every((kind) => kind.startsWith("pipe:")))
      throw new Error(`the child's stdin, stdout, stderr are ${stdio.join(", ")}, not OS pipes`);
    if (tid === hostPid) throw new Error("the child was started by the main thread, not the spawner thread");
    plumbing = `its stdio are OS pipes, it was started by thread ${tid} (the spawner), not the main thread`;
  });
  ok("websocket round trip from outside through /bin/cat in the chroot");
  ok(plumbing);
  await within(log.wait(/started cat/), "the log line for the child");

  process.kill(hostPid, "SIGTERM");
  const code = await within(server.exited, "exit after SIGTERM");
  running.delete(server);
  if (code !== 0) throw new Error(`SIGTERM ended it with exit code ${code}:\n${log.text()}`);
  ok("SIGTERM to PID 1 (docker stop) ends it with exit code 0");
}

async function main(): Promise<void> {
  if (process.platform !== "linux") fail("needs Linux (namespaces and chroot)");
  if (process.getuid?.() !== 0) fail("needs root (unshare --mount --pid and chroot)");
  const target = hostTarget();
  if (target.libc !== "glibc")
    fail(`the image is built from the glibc binary; this machine is ${target.name}`);
  const binary = join(ROOT, binaryPath(target));
  if (!existsSync(binary)) {
    console.log(`${binaryPath(target)} is missing; building it`);
    await Bun.$`${process.execPath} ${join(ROOT, "scripts/ship/build.ts")} --target=host --no-archive`;
  }
  const rootfs = await mkdtemp(join(tmpdir(), "scalesocket-scratch-"));
  try {
    await check(rootfs, binary);
    console.log("scratch-check: all passed");
  } catch (err) {
    process.exitCode = 1;
    process.stderr.write(`scratch-check: FAIL: ${(err as Error).message}\n`);
  } finally {
    // --kill-child makes unshare's death take the contained process with it.
    for (const p of running) p.kill("SIGKILL");
    await Promise.all([...running].map((p) => p.exited));
    // The /proc mount lived in the namespace's own mount table, so it went with it; only files remain.
    await rm(rootfs, { recursive: true, force: true });
  }
}

await main();
