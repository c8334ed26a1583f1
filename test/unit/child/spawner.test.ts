import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { Child } from "../../../src/child/child.ts";
import type { ProcessStarter } from "../../../src/child/link.ts";
import { closeChildEnds, closePipes, openStdio } from "../../../src/child/pipes.ts";
import { spawnWithPipes } from "../../../src/child/spawn.ts";
import { exitOf, Spawner, SpawnerGone } from "../../../src/child/spawner.ts";
import { stdioTransport } from "../../../src/child/stdio.ts";
import { outputSplitter } from "../../../src/framing/output.ts";
import type { ByteSink } from "../../../src/writer.ts";
import { FIXTURES, until, within } from "../../helpers.ts";

const spawners: Spawner[] = [];
afterEach(() => {
  for (const s of spawners.splice(0)) s.close();
});

/** `safetyMs`: the spawner's look for exits no SIGCHLD announced; an hour leaves SIGCHLD the only way. */
function spawner(safetyMs?: number): Spawner {
  const s = new Spawner((err) => {
    throw err;
  }, safetyMs);
  spawners.push(s);
  return s;
}

/** This process's descriptors that are pipes, each with its pipe (`pipe:[inode]`); those closed meanwhile left out. */
function pipeDescriptors(): Map<number, string> {
  const out = new Map<number, string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const link = readlinkSync(`/proc/self/fd/${fd}`);
      if (link.startsWith("pipe:")) out.set(Number(fd), link);
    } catch {
      // closed meanwhile (the listing's own descriptor, another test's)
    }
  }
  return out;
}

/** Pipes for one child; returns the fds to give it and a reader of its stdout that closes our ends after. */
function pipes() {
  const stdio = openStdio(true);
  if (!stdio?.stdin) throw new Error("no OS pipes here");
  const { stdin, stdout, stderr } = stdio;
  return {
    fds: [stdin.read.fd, stdout.write.fd, stderr.write.fd] as [number, number, number],
    /** After the child started: ours only. */
    started() {
      closeChildEnds(stdio);
    },
    stdinFd: stdin.write,
    async output(): Promise<string> {
      const text = await new Response(Bun.file(stdout.read.fd).stream()).text();
      stdout.read.close();
      stderr.read.close();
      return text;
    },
    closeAll() {
      closePipes(stdin, stdout, stderr);
    },
  };
}

describe("Spawner", () => {
  test("starts a child on its thread with our pipes: pid, output, exit code", async () => {
    const s = spawner();
    const p = pipes();
    const child = await within(
      s.spawn({ argv: ["/bin/sh", "-c", "read line; echo got $line; exit 3"], env: {}, stdio: p.fds }),
      "the start",
    );
    p.started();
    expect(child.pid).toBeGreaterThan(0);
    const sink = Bun.file(p.stdinFd.fd).writer();
    sink.write("hello\n");
    await sink.end();
    p.stdinFd.close();
    expect(await within(p.output(), "the output")).toBe("got hello\n");
    expect(await within(child.exited, "the exit")).toEqual({ code: 3, signal: null });
  });

  test("the child leads its own process group, and a signal is reported as such", async () => {
    const s = spawner();
    const p = pipes();
    const child = await s.spawn({ argv: ["/bin/sleep", "10"], env: {}, stdio: p.fds });
    p.started();
    const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
    const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    expect(pgid).toBe(child.pid);
    process.kill(-child.pid, "SIGTERM");
    expect(await within(child.exited, "the exit")).toEqual({ code: null, signal: "SIGTERM" });
    p.stdinFd.close();
    await p.output();
  });

  test("a command that cannot be executed is refused with the reason", async () => {
    const s = spawner();
    const p = pipes();
    const start = s.spawn({ argv: [`${FIXTURES}../helpers.ts`], env: {}, stdio: p.fds });
    await expect(within(start, "the refusal")).rejects.toThrow(/EACCES|[Pp]ermission/);
    await start.catch(() => {});
    p.closeAll();
  });

  test("the environment is exactly the one given", async () => {
    const s = spawner();
    const p = pipes();
    const child = await s.spawn({ argv: ["/usr/bin/env"], env: { ONLY: "this" }, stdio: p.fds });
    p.started();
    p.stdinFd.close();
    expect(await p.output()).toBe("ONLY=this\n");
    await child.exited;
  });

  test("a NUL byte in an argument or variable is refused, as Bun.spawn refuses it", async () => {
    const s = spawner();
    const start = s.spawn({ argv: ["/usr/bin/env"], env: { A: "x\0y" }, stdio: ["ignore", 1, 2] });
    await expect(within(start, "the refusal")).rejects.toThrow(/NUL/);
  });

  test("where this thread cannot reap (no libc), the worker uses Bun.spawn and reports the exit", async () => {
    const s = spawner();
    // What a platform without libc gives; reached through the private field only here.
    (s as unknown as { canReap: boolean }).canReap = false;
    const p = pipes();
    const child = await s.spawn({
      argv: ["/bin/sh", "-c", "echo $A; exit 5"],
      env: { A: "a=b" },
      stdio: p.fds,
    });
    p.started();
    p.stdinFd.close();
    expect(await within(p.output(), "the output")).toBe("a=b\n");
    expect(await within(child.exited, "the exit")).toEqual({ code: 5, signal: null });
  });

  test("once closed it refuses with SpawnerGone, so children are started on the main thread", async () => {
    const s = spawner();
    s.close();
    expect(s.usable).toBe(false);
    const p = pipes();
    await expect(s.spawn({ argv: ["/bin/true"], env: {}, stdio: p.fds })).rejects.toBeInstanceOf(SpawnerGone);
    p.closeAll();
  });
});

describe("a spawner thread that ends on its own", () => {
  test("reports itself failed; the children it started are still watched from this thread", async () => {
    const failures: string[] = [];
    const s = new Spawner((err) => void failures.push(err.message));
    spawners.push(s);
    const p = pipes();
    const child = await s.spawn({ argv: ["/bin/sleep", "10"], env: {}, stdio: p.fds });
    p.started();
    // What an error inside the thread would do; reached through the private field only here.
    (s as unknown as { worker: Worker }).worker.terminate();
    await until(() => failures.length > 0, "the failure report");
    expect(failures).toEqual(["the spawner thread ended"]);
    expect(s.usable).toBe(false);
    process.kill(-child.pid, "SIGKILL");
    expect(await within(child.exited, "the exit")).toEqual({ code: null, signal: "SIGKILL" });
    p.stdinFd.close();
    await p.output();
  });
});

describe("reaping", () => {
  test("a wait status reads as an exit code or a signal name", () => {
    expect(exitOf(0)).toEqual({ code: 0, signal: null });
    expect(exitOf(3 << 8)).toEqual({ code: 3, signal: null });
    expect(exitOf(255 << 8)).toEqual({ code: 255, signal: null });
    expect(exitOf(15)).toEqual({ code: null, signal: "SIGTERM" });
    expect(exitOf(9 | 0x80)).toEqual({ code: null, signal: "SIGKILL" }); // core dumped
  });

  test("exits are noticed on SIGCHLD, of many children at once", async () => {
    const s = spawner(3_600_000);
    const children = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        s.spawn({ argv: ["/bin/sh", "-c", `exit ${i % 7}`], env: {}, stdio: ["ignore", 1, 2] }),
      ),
    );
    const exits = await within(Promise.all(children.map((c) => c.exited)), "40 exits");
    expect(exits.map((e) => e.code)).toEqual(Array.from({ length: 40 }, (_, i) => i % 7));
  });

  test("a child that exits before its pid comes back from the worker is still noticed at once", async () => {
    const s = spawner(3_600_000);
    // One at a time, so that no other child's SIGCHLD comes later to find it: `true` often ends before the
    // worker's answer is read here, its SIGCHLD handled while its pid is not yet watched.
    for (let i = 0; i < 30; i++) {
      const child = await s.spawn({ argv: ["/bin/true"], env: {}, stdio: ["ignore", 1, 2] });
      expect(await within(child.exited, `exit ${i + 1} of 30`)).toEqual({ code: 0, signal: null });
    }
  });

  test("where orphans come to this process (PID 1, a subreaper), they are reaped when they exit", async () => {
    const run = async (mode: "reap" | "keep") => {
      const proc = Bun.spawn([process.execPath, `${FIXTURES}subreaper.ts`, mode], { stdout: "pipe" });
      const out = await within(new Response(proc.stdout).text(), `the subreaper fixture (${mode})`, 15_000);
      expect(await proc.exited).toBe(0);
      return JSON.parse(out) as { orphan: number; state: string; reaped: number };
    };
    // The control first: without the option the orphan is seen as a zombie.
    expect(await run("keep")).toMatchObject({ state: "Z", reaped: 0 });
    // The shell may leave more than one process behind (a subshell as well as `sleep`): all of them are orphans.
    const reaped = await run("reap");
    expect(reaped.state).toBe("gone");
    expect(reaped.reaped).toBeGreaterThanOrEqual(1);
  });

  test("exits of ours and of Bun's own children at once: each gets its own", async () => {
    const s = spawner();
    const theirs = Array.from({ length: 5 }, (_, i) => Bun.spawn(["/bin/sh", "-c", `exit ${10 + i}`]));
    const ours = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        s.spawn({ argv: ["/bin/sh", "-c", `exit ${i}`], env: {}, stdio: ["ignore", 1, 2] }),
      ),
    );
    const exits = await within(Promise.all(ours.map((c) => c.exited)), "our exits");
    expect(exits.map((e) => e.code)).toEqual([0, 1, 2, 3, 4]);
    expect(await within(Promise.all(theirs.map((c) => c.exited)), "Bun's exits")).toEqual([
      10, 11, 12, 13, 14,
    ]);
  });
});

describe("Child with a spawner", () => {
  /** A Child of `cat` with every option a room would give, collecting its output lines. */
  function cat(spawner: Spawner) {
    const lines: string[] = [];
    const events: string[] = [];
    const output = outputSplitter(
      { binary: false, delimiters: null, maxMessage: 1 << 20 },
      (m) => void lines.push(String(m)),
      () => {},
    );
    const child = new Child(
      { cmd: "cat", args: [], env: {}, searchPath: process.env.PATH, spawner },
      stdioTransport(true),
      { maxBuffer: 1 << 20, graceMs: 500, delayMs: 0 },
      {
        output: (chunk) => output.push(chunk),
        outputEnded: () => output.end(),
        logLine: (line) => void events.push(`log ${line}`),
        logOversize: () => {},
        written: () => {},
        attachFailed: (reason) => void events.push(`attach failed ${reason}`),
        started: (pid) => void events.push(`started ${pid > 0}`),
        startFailed: (reason) => void events.push(`start failed ${reason}`),
      },
    );
    return { child, lines, events };
  }

  test("input written before the child runs is held, then reaches it before its EOF", async () => {
    const { child, lines, events } = cat(spawner());
    expect(child.pid).toBeNull(); // still being started on the other thread
    expect(child.write("one\n")).toBe(true);
    expect(child.write("two\n")).toBe(true);
    const exit = await within(child.stop(), "the stop");
    expect(exit).toEqual({ code: 0, signal: null });
    expect(lines).toEqual(["one", "two"]);
    expect(events).toEqual(["started true"]);
  });

  test("a child waiting for the spawner thread holds no descriptor: the thread is asked to make its pipes", () => {
    // A starter that never answers: what the rooms waiting for it hold is all that is counted.
    const asked: unknown[] = [];
    const waiting: ProcessStarter = {
      usable: true,
      spawn: (request) => {
        asked.push(request.stdio);
        return new Promise(() => {});
      },
    };
    // Another thread may close a descriptor meanwhile; none opens one.
    const pipes = () => new Set([...pipeDescriptors()].map(([fd, pipe]) => `${fd} ${pipe}`));
    const before = pipes();
    for (let i = 0; i < 50; i++)
      spawnWithPipes(
        { cmd: "cat", args: [], env: {}, searchPath: process.env.PATH, spawner: waiting },
        true,
        true,
      );
    expect([...pipes()].filter((p) => !before.has(p))).toEqual([]);
    expect(asked).toHaveLength(50);
    expect(asked[0]).toEqual({ pipes: true, stdin: true });
  });

  test("the thread's pipes: ours are one end each, the child's ends closed here, and they carry its stdio", async () => {
    const spawned = spawnWithPipes(
      { cmd: "cat", args: [], env: {}, searchPath: process.env.PATH, spawner: spawner() },
      true,
      true,
    );
    const proc = await within(spawned.process, "the start");
    const { stdin, stdout, stderr } = proc.pipes as NonNullable<typeof proc.pipes>;
    const open = pipeDescriptors();
    const ours = [stdin as number, stdout, stderr].map((fd) => open.get(fd));
    expect(ours.every((link) => link?.startsWith("pipe:["))).toBe(true);
    // No other descriptor of this process is an end of the same pipes: the child's are closed here.
    const all = [...open.values()];
    for (const link of ours) expect(all.filter((l) => l === link)).toHaveLength(1);
    const out: string[] = [];
    const reading = spawned.stdout.read((chunk) => void out.push(Buffer.from(chunk).toString()));
    const input = (spawned.stdin as () => ByteSink)();
    expect(input.write("through the thread's pipes\n", 27)).toBe(27);
    input.end();
    await within(reading, "cat's output to its end");
    await within(
      spawned.stderr.read(() => {}),
      "cat's stderr to its end",
    );
    expect(out.join("")).toBe("through the thread's pipes\n");
    expect(await within(proc.exited, "the exit")).toEqual({ code: 0, signal: null });
  });

  test("with its spawner gone, a child is started on the main thread", async () => {
    const s = spawner();
    s.close();
    const { child, lines, events } = cat(s);
    child.write("still works\n");
    expect(await within(child.stop(), "the stop")).toEqual({ code: 0, signal: null });
    expect(lines).toEqual(["still works"]);
    expect(events).toEqual(["started true"]);
  });
});
