import { afterEach, describe, expect, test } from "bun:test";
import { killGroup, libc } from "../../../src/child/libc.ts";
import { alive, until, within } from "../../helpers.ts";

const started: number[] = [];
afterEach(() => {
  for (const pid of started.splice(0)) killGroup(pid, "SIGKILL");
});

/** `argv` leading a process group of its own. */
function leader(argv: string[]) {
  const proc = Bun.spawn(argv, { stdout: "pipe", detached: true });
  started.push(proc.pid);
  return proc;
}

describe("libc", () => {
  test("loads on Linux (glibc or musl), where the server's pipes and group signals go through it", () => {
    if (process.platform === "linux") expect(libc()).not.toBeNull();
    else expect(libc()).toBeNull();
  });
});

describe("killGroup", () => {
  test("signals the group, and says false once it is gone", async () => {
    const proc = leader(["/bin/sleep", "30"]);
    expect(killGroup(proc.pid, 0)).toBe(true);
    expect(killGroup(proc.pid, "SIGTERM")).toBe(true);
    await within(proc.exited, "the exit");
    expect(proc.signalCode).toBe("SIGTERM");
    // Reaped (exited resolved): the group has no process left.
    expect(killGroup(proc.pid, 0)).toBe(false);
    expect(killGroup(proc.pid, "SIGKILL")).toBe(false);
  });

  test("reaches every process of the group, not only its leader", async () => {
    const proc = leader(["/bin/sh", "-c", "sleep 30 & echo $!; wait"]);
    const line = await within(proc.stdout.getReader().read(), "the sleep's pid");
    const grandchild = Number(new TextDecoder().decode(line.value));
    expect(alive(grandchild)).toBe(true);
    expect(killGroup(proc.pid, "SIGTERM")).toBe(true);
    await within(proc.exited, "the shell's exit");
    // Not ours to wait for: dead once it is gone or a zombie.
    await until(() => !alive(grandchild), "the sleep to end");
  });

  test("a group that never existed is reported gone, not thrown", () => {
    // PIDs are below 2^22 on Linux: this group cannot exist.
    expect(killGroup(2 ** 30, "SIGTERM")).toBe(false);
  });
});
