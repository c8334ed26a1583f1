#!/usr/bin/env bun
/**
 * Checks the container image in a real container runtime (podman with runc). It builds the Dockerfile's final
 * stage from a root filesystem made here: the binary is compiled from the checkout (compile.ts, what the build
 * script runs), the root filesystem assembled from it (rootfs.ts, what the Dockerfile's build stage runs), and
 * `podman build --build-context build=<dir>` puts that folder in place of the `build` stage, so podman builds
 * the Dockerfile's own `FROM scratch` stage without pulling `oven/bun` (no registry here). On that image it
 * builds the README's derived image (a static busybox as `cat`, plus `sh` and `sleep` for the init case), then
 * proves, from outside the containers:
 *
 * 1. without /proc the binary aborts (a bare chroot of the root filesystem: why a runtime must mount it);
 * 2. `--version` runs in the image;
 * 3. the server is PID 1, answers /health and a websocket round trip through `cat`; the server and its child run
 *    as uid 65534; the child's stdio are OS pipes and it was started by the spawner thread (the libc the
 *    spawner loads is the image's own);
 * 4. `podman stop` (SIGTERM) ends it with exit 0, the open client gets close code 1001, the child was stopped
 *    by the server before it exited;
 * 5. a grandchild orphaned by the child is reaped once it exits: with `--init` by the init, without it by
 *    scalesocket as PID 1 (a unit test, test/unit/child/spawner.test.ts, shows the zombie it would otherwise be).
 *
 * Needs root, podman, runc if the default runtime cannot run here, a static busybox (Debian: podman runc
 * busybox-static; .ci/run installs them) and `chroot`. Removes its containers, images and folder at the end.
 * Usage: bun scripts/ship/container-check.ts
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { compileBinary } from "./compile.ts";
import { assembleRootfs, IMAGE_BINARY, sharedLibraries } from "./rootfs.ts";
import { hostTarget } from "./targets.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const WAIT_MS = 10_000;
/** Long enough to be seen running after the round trip, short enough to keep the check quick. */
const GRANDCHILD_SECONDS = 2;
const NAME = `scalesocket-check-${process.pid}`;
const BASE_IMAGE = `localhost/${NAME}:image`;
const DERIVED_IMAGE = `localhost/${NAME}:derived`;
const NOBODY = "65534";
/** Open files and processes for each container: plenty for one server, two children and a sleep. */
const CHECK_ULIMIT = 4096;

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

/** Looks `test` up every 50 ms until it returns a value, for states no event announces (a process' end). */
async function until<T>(test: () => Promise<T | undefined>, what: string, ms = WAIT_MS): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await test();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(50);
  }
}

function which(name: string): string | null {
  return Bun.which(name, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` });
}

/**
 * podman's options for this machine: runc when installed (crun, podman's default on Debian, refuses hybrid
 * cgroups) and cgroupfs (no systemd to manage them). And ulimits: podman's defaults are higher than a sandbox
 * may let a container set, and runc then fails to start it ("error setting rlimit"). The ceiling is not always
 * ours: it is conmon's, which podman may set lower (docs/container.md). The check needs few of either, so it
 * asks for CHECK_ULIMIT, or less when our own hard limit is lower.
 */
async function podmanOptions(): Promise<{ global: string[]; run: string[] }> {
  const runc = which("runc");
  const global = [...(runc ? ["--runtime", runc] : []), "--cgroup-manager=cgroupfs"];
  const limits = await readFile("/proc/self/limits", "utf8");
  const run = ["--network", "host"];
  for (const [label, name] of [
    ["Max open files", "nofile"],
    ["Max processes", "nproc"],
  ] as const) {
    const hard = new RegExp(`^${label}\\s+\\S+\\s+(\\S+)`, "m").exec(limits)?.[1] ?? "unlimited";
    const n = hard === "unlimited" ? CHECK_ULIMIT : Math.min(Number(hard), CHECK_ULIMIT);
    run.push("--ulimit", `${name}=${n}:${n}`);
  }
  return { global, run };
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

/** A process as the host's /proc shows it. */
interface Proc {
  pid: number;
  name: string;
  state: string;
  ppid: number;
  uid: string;
  /** Its pid in each namespace, outermost first: the last is the one the container sees. */
  nspid: number[];
}

async function proc(pid: number): Promise<Proc | undefined> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined);
  if (status === undefined) return undefined;
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1]?.trim() ?? "";
  return {
    pid,
    name: field("Name"),
    state: field("State").charAt(0),
    ppid: Number(field("PPid")),
    uid: field("Uid").split(/\s+/).join(" "),
    nspid: field("NSpid").split(/\s+/).map(Number),
  };
}

/** Every process in the PID namespace of host pid `member`: what the container holds, seen from outside. */
async function namespaceProcesses(member: number): Promise<Proc[]> {
  const ns = await readlink(`/proc/${member}/ns/pid`);
  const found: Proc[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const link = await readlink(`/proc/${entry}/ns/pid`).catch(() => undefined);
    if (link !== ns) continue;
    const p = await proc(Number(entry));
    if (p) found.push(p);
  }
  return found;
}

/** The children of each thread of `pid`: a child is listed under the thread that forked it. */
async function childrenByThread(pid: number): Promise<{ tid: number; child: number }[]> {
  const found: { tid: number; child: number }[] = [];
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const list = (await readFile(`/proc/${pid}/task/${tid}/children`, "utf8").catch(() => "")).trim();
    for (const child of list ? list.split(" ") : []) found.push({ tid: Number(tid), child: Number(child) });
  }
  return found;
}

/** A websocket to a room that has answered one round trip; `closed` resolves with the close code. */
async function openRoom(port: number, room: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/${room}`);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
  });
  const sent = `hello from outside the container (${room})`;
  const got = await within(
    new Promise<string>((resolve, reject) => {
      ws.onopen = () => ws.send(sent);
      ws.onmessage = (e) => resolve(String(e.data));
      ws.onerror = () => reject(new Error("websocket error"));
      closed.then((e) => reject(new Error(`closed before a message: ${e.code} ${e.reason}`)));
    }),
    `the websocket round trip in room ${room}`,
  );
  if (got !== sent) throw new Error(`sent '${sent}', got '${got}'`);
  return { ws, closed };
}

class Podman {
  private readonly containers = new Set<string>();
  private readonly runs = new Set<Subprocess>();

  constructor(
    private readonly opts: { global: string[]; run: string[] },
    private readonly bin: string,
  ) {}

  /** A podman command run to its end (bounded); throws with its output when it fails. */
  async cmd(args: string[], ms = WAIT_MS): Promise<string> {
    const p = Bun.spawn([this.bin, ...this.opts.global, ...args], { stdout: "pipe", stderr: "pipe" });
    const out = reader(p.stdout);
    const err = reader(p.stderr);
    const code = await within(p.exited, `podman ${args[0]}`, ms).catch((e) => {
      p.kill("SIGKILL");
      throw e;
    });
    await Promise.all([out.done, err.done]);
    if (code !== 0) throw new Error(`podman ${args.join(" ")}: exit ${code}\n${out.text()}${err.text()}`);
    return out.text();
  }

  /** `podman run` attached, so its exit code is the container's and its stderr the server's log. */
  run(name: string, flags: string[], image: string, args: string[]) {
    this.containers.add(name);
    const p = Bun.spawn(
      [
        this.bin,
        ...this.opts.global,
        "run",
        "--rm",
        "--name",
        name,
        ...this.opts.run,
        ...flags,
        image,
        ...args,
      ],
      { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
    );
    this.runs.add(p);
    return { exited: p.exited, log: reader(p.stderr), out: reader(p.stdout) };
  }

  /** The host pid of a running container's PID 1. */
  async pid1(name: string): Promise<number> {
    return Number((await this.cmd(["inspect", "--format", "{{.State.Pid}}", name])).trim());
  }

  /** Removes every container this started, then the images; never throws. */
  async cleanUp(): Promise<void> {
    for (const name of this.containers) await this.cmd(["rm", "--force", "--ignore", name]).catch(() => {});
    for (const p of this.runs) p.kill("SIGKILL");
    await Promise.all([...this.runs].map((p) => p.exited));
    await this.cmd(["rmi", "--force", "--ignore", DERIVED_IMAGE, BASE_IMAGE]).catch(() => {});
  }
}

/** A static busybox: it runs the applet its file is named after, and needs nothing from the image. */
async function staticBusybox(): Promise<string> {
  for (const path of ["/bin/busybox", "/usr/bin/busybox", Bun.which("busybox")]) {
    if (path && existsSync(path) && (await sharedLibraries(path)).length === 0) return path;
  }
  throw new Error("no static busybox (Debian: apt-get install busybox-static)");
}

/** 1: the root filesystem alone, chrooted as nobody with no /proc mounted: the binary must refuse to run. */
async function checkNoProc(rootfs: string): Promise<void> {
  const chroot = which("chroot");
  if (!chroot) throw new Error("chroot not found (coreutils)");
  const p = Bun.spawn([chroot, `--userspec=${NOBODY}:${NOBODY}`, rootfs, IMAGE_BINARY, "--version"], {
    env: { PATH: "/usr/local/bin" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const err = reader(p.stderr);
  const code = await within(p.exited, "the binary without /proc");
  await err.done;
  if (code === 0)
    throw new Error("the binary started without /proc; the documented requirement is out of date");
  ok(`without /proc it aborts (exit ${code}: ${/panic[^\n]*/.exec(err.text())?.[0] ?? "no panic line"})`);
}

/** 3–4: the server in the derived image as PID 1, from start to `podman stop`. */
async function checkServer(podman: Podman): Promise<void> {
  const name = `${NAME}-server`;
  const run = podman.run(name, [], DERIVED_IMAGE, ["--addr", "127.0.0.1:0", "cat"]);
  const port = Number(
    (await within(run.log.wait(/listening on 127\.0\.0\.1:(\d+)/), "the listening line"))[1],
  );
  const server = await podman.pid1(name);
  const self = await proc(server);
  if (self?.nspid.at(-1) !== 1)
    throw new Error(`the server is not PID 1 in the container: ${JSON.stringify(self)}`);
  ok(`the server is PID 1 of the container (host pid ${server}), listening on 127.0.0.1:${port}`);

  const health = await within(
    fetch(`http://127.0.0.1:${port}/health`).then((r) => r.text()),
    "/health",
  );
  if (health !== '{"status":"ok"}') throw new Error(`/health answered ${health}`);
  ok(`GET /health from outside: ${health}`);

  const { ws, closed } = await openRoom(port, "podman");
  ok("websocket round trip from outside through cat (busybox) in the container");
  const children = await childrenByThread(server);
  if (children.length !== 1) throw new Error(`expected one child, found ${JSON.stringify(children)}`);
  const { tid, child: childPid } = children[0] as { tid: number; child: number };
  const child = await proc(childPid);
  if (!child) throw new Error("the child is gone");
  for (const p of [self, child]) {
    if (p.uid !== `${NOBODY} ${NOBODY} ${NOBODY} ${NOBODY}`)
      throw new Error(`${p.name} runs as uid ${p.uid}`);
  }
  ok(
    `the server and its child (${child.name}, host pid ${childPid}) run as uid ${NOBODY} (real, effective, saved, fs)`,
  );
  const stdio = await Promise.all([0, 1, 2].map((fd) => readlink(`/proc/${childPid}/fd/${fd}`)));
  if (!stdio.every((kind) => kind.startsWith("pipe:")))
    throw new Error(`the child's stdin, stdout, stderr are ${stdio.join(", ")}, not OS pipes`);
  if (tid === server) throw new Error("the child was started by the main thread, not the spawner thread");
  ok(`the child's stdio are OS pipes and thread ${tid} (the spawner), not the main thread, started it`);

  const stopped = Date.now();
  await podman.cmd(["stop", "--time", "10", name], 20_000);
  const code = await within(run.exited, "podman run to end after podman stop");
  const seconds = (Date.now() - stopped) / 1000;
  if (code !== 0) throw new Error(`podman stop ended it with exit code ${code}:\n${run.log.text()}`);
  const close = await within(closed, "the client's close frame");
  if (close.code !== 1001)
    throw new Error(`the client was closed with ${close.code} ${close.reason}, not 1001`);
  ws.close();
  await run.log.done;
  const childNsPid = child.nspid.at(-1);
  const line = new RegExp(`stopped cat \\(pid ${childNsPid}\\): [^\\n]*`).exec(run.log.text());
  if (!line) throw new Error(`no log line saying the server stopped its child:\n${run.log.text()}`);
  if (existsSync(`/proc/${childPid}`)) throw new Error(`the child (host pid ${childPid}) is still there`);
  ok(
    `podman stop (SIGTERM): exit 0 after ${seconds.toFixed(1)} s, the client got 1001 '${close.reason}', ` +
      `the server logged '${line[0]}' before exiting`,
  );
}

/**
 * 5: the room's child runs `(sleep N &)` and becomes `cat`: the subshell exits at once, so `sleep` is orphaned
 * to the container's PID 1. When it exits, PID 1 must reap it: catatonit does (`--init`), and so does
 * scalesocket as PID 1 (spawner.ts).
 */
async function checkReaping(podman: Podman, init: boolean): Promise<void> {
  const name = `${NAME}-${init ? "init" : "noinit"}`;
  const script = `(sleep ${GRANDCHILD_SECONDS} &); exec cat`;
  const run = podman.run(name, init ? ["--init"] : [], DERIVED_IMAGE, [
    "--addr",
    "127.0.0.1:0",
    "sh",
    "--",
    "-c",
    script,
  ]);
  const port = Number(
    (await within(run.log.wait(/listening on 127\.0\.0\.1:(\d+)/), "the listening line"))[1],
  );
  const pid1 = await podman.pid1(name);
  const { ws, closed } = await openRoom(port, "reaping");
  const sleeping = (await namespaceProcesses(pid1)).find((p) => p.name === "sleep");
  if (!sleeping)
    throw new Error(
      `no sleep in the container after the round trip (it should last ${GRANDCHILD_SECONDS} s)`,
    );
  const parent = await proc(pid1);
  if (sleeping.ppid !== pid1)
    throw new Error(`sleep's parent is host pid ${sleeping.ppid}, not PID 1 (${pid1}): it was not orphaned`);
  const what = `the grandchild sleep (host pid ${sleeping.pid}) orphaned to PID 1 (${parent?.name})`;
  const how = init ? "with --init" : "without --init";
  const left = await until(
    async () => ((await proc(sleeping.pid)) === undefined ? "gone" : undefined),
    `${what} to be reaped`,
  ).catch(async (e) => {
    throw new Error(`${(e as Error).message}; its state: ${JSON.stringify(await proc(sleeping.pid))}`);
  });
  ok(`${how}, ${what} is reaped when it exits (${left})`);
  ws.close();
  await within(closed, "the client's close");
  await podman.cmd(["stop", "--time", "10", name], 20_000);
  const code = await within(run.exited, "podman run to end after podman stop");
  if (code !== 0) throw new Error(`${how}, podman stop ended it with exit code ${code}`);
  ok(`${how}, podman stop ends it with exit code 0 too`);
}

/**
 * Compiles the binary, assembles the root filesystem and checks it has no /proc support of its own, then builds
 * the Dockerfile's final stage from it (the base image) and the README's derived image on that.
 */
async function buildImages(podman: Podman, dir: string): Promise<void> {
  const target = hostTarget();
  const binary = join(dir, `scalesocket-${target.name}`);
  await compileBinary(target.bun, binary);
  ok(`compiled ${target.name} from the checkout`);
  // The Dockerfile's final stage copies /rootfs/ from the `build` stage; this folder stands in for it.
  const context = join(dir, "build-stage");
  await mkdir(join(context, "rootfs"), { recursive: true });
  const files = await assembleRootfs(binary, join(context, "rootfs"));
  ok(`root filesystem: ${files.join(", ")}, /proc`);

  await checkNoProc(join(context, "rootfs"));

  const empty = join(dir, "empty");
  await mkdir(empty);
  const build = await podman.cmd(
    [
      "build",
      "--pull=never",
      "--build-context",
      `build=${context}`,
      "--file",
      join(ROOT, "Dockerfile"),
      "--tag",
      BASE_IMAGE,
      empty,
    ],
    120_000,
  );
  const steps = build.split("\n").filter((l) => /^\[\d+\/\d+\] STEP/.test(l));
  if (steps.some((l) => /FROM oven\/bun|RUN /.test(l)))
    throw new Error(`podman ran the build stage instead of the folder standing in for it:\n${build}`);
  ok(`built the Dockerfile's final stage (${steps.length} steps) from the root filesystem`);
  const config = (
    await podman.cmd([
      "image",
      "inspect",
      "--format",
      "{{.Config.User}} {{json .Config.Entrypoint}}",
      BASE_IMAGE,
    ])
  ).trim();
  ok(`image user and entrypoint: ${config}`);

  const derived = join(dir, "derived");
  await mkdir(derived);
  await copyFile(await staticBusybox(), join(derived, "busybox"));
  await writeFile(
    join(derived, "Containerfile"),
    [
      `FROM ${BASE_IMAGE}`,
      // The README's derived image (busybox as cat); sh and sleep for the grandchild of the init case.
      "COPY busybox /usr/local/bin/cat",
      "COPY busybox /usr/local/bin/sh",
      "COPY busybox /usr/local/bin/sleep",
      'CMD ["cat"]',
      "",
    ].join("\n"),
  );
  await podman.cmd(["build", "--pull=never", "--tag", DERIVED_IMAGE, derived], 60_000);
  ok("built the derived image: the image plus a static busybox as cat, sh and sleep");
}

/** 2: `--version` in the base image. */
async function checkVersion(podman: Podman): Promise<void> {
  const version = podman.run(`${NAME}-version`, [], BASE_IMAGE, ["--version"]);
  const code = await within(version.exited, "--version to exit");
  await version.out.done;
  if (code !== 0 || !version.out.text().startsWith("scalesocket "))
    throw new Error(`--version in the container: exit ${code}, ${version.out.text()}${version.log.text()}`);
  ok(`--version in the container: ${version.out.text().trim()}`);
}

async function main(): Promise<void> {
  const fail = (message: string): never => {
    process.stderr.write(`container-check: FAIL: ${message}\n`);
    process.exit(1);
  };
  if (process.platform !== "linux") fail("needs Linux");
  if (process.getuid?.() !== 0) fail("needs root (podman with cgroupfs, chroot)");
  if (hostTarget().libc !== "glibc")
    fail(`the image is built from the glibc binary; this is ${hostTarget().name}`);
  const bin = which("podman") ?? fail("podman not found (Debian: apt-get install podman runc)");
  const podman = new Podman(await podmanOptions(), bin);
  const dir = await mkdtemp(join(tmpdir(), "scalesocket-container-"));
  let cleaning: Promise<void> | undefined;
  const cleanUp = () => (cleaning ??= podman.cleanUp().then(() => rm(dir, { recursive: true, force: true })));
  // Interrupted (Ctrl-C, a CI timeout): containers and images are still removed.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      process.stderr.write(`container-check: ${signal}, cleaning up\n`);
      void cleanUp().finally(() => process.exit(130));
    });
  }
  const started = Date.now();
  try {
    await buildImages(podman, dir);
    await checkVersion(podman);
    await checkServer(podman);
    await checkReaping(podman, true);
    await checkReaping(podman, false);
    console.log(`container-check: all passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    process.exitCode = 1;
    process.stderr.write(`container-check: FAIL: ${(err as Error).message}\n`);
  } finally {
    await cleanUp();
  }
}

await main();
