import { afterEach, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { alive, FIXTURES, TestClient, until, within } from "./helpers.ts";

const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
const procs: Subprocess[] = [];

afterEach(() => {
  for (const p of procs.splice(0)) p.kill("SIGKILL");
});

/** Runs the real CLI in its own process and waits for its "listening on" log line to learn the port. */
async function runServer(
  argv: string[],
): Promise<{ proc: Subprocess<"ignore", "pipe", "pipe">; port: number; stderr: () => string }> {
  const proc = Bun.spawn([process.execPath, MAIN, "--addr", "127.0.0.1:0", "--grace", "0.5", ...argv], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  procs.push(proc);
  let text = "";
  const decoder = new TextDecoder();
  const reader = proc.stderr.getReader();
  let port = 0;
  const reading = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      text += decoder.decode(value, { stream: true });
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(text);
      if (m && port === 0) port = Number(m[1]);
    }
  })();
  await within(
    (async () => {
      while (port === 0) await Promise.race([reading, Bun.sleep(10)]);
    })(),
    "the server to listen",
  );
  return { proc, port, stderr: () => text };
}

describe("shutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`${signal} closes clients, stops every child and its group, and exits 0`, async () => {
      const { proc, port, stderr } = await runServer([`${FIXTURES}grandchild.sh`]);
      const a = await TestClient.open(`ws://127.0.0.1:${port}/one`);
      const b = await TestClient.open(`ws://127.0.0.1:${port}/two`);
      const pids = [...(await a.next()).split(" ").slice(1), ...(await b.next()).split(" ").slice(1)].map(
        Number,
      );
      expect(pids.every(alive)).toBe(true);
      proc.kill(signal);
      expect(await a.waitClosed()).toEqual({ code: 1001, reason: "server shutting down" });
      expect((await b.waitClosed()).code).toBe(1001);
      expect(await within(proc.exited, "the server to exit")).toBe(0);
      // The server waited for them: by the time it exited, children and grandchildren were gone.
      await until(() => !pids.some(alive), "every child and grandchild to be gone", 1000);
      expect(stderr()).toContain(`${signal}: closing clients and stopping children`);
    });
  }

  test("a bad flag exits 2 before binding anything", async () => {
    const proc = Bun.spawn([process.execPath, MAIN, "--addr", "127.0.0.1:0", "--frame=xml", "cat"], {
      stderr: "pipe",
      stdout: "pipe",
    });
    procs.push(proc);
    expect(await within(proc.exited, "exit")).toBe(2);
    const err = await new Response(proc.stderr).text();
    expect(err.trim().split("\n")).toEqual([
      "scalesocket: error: invalid value 'xml' for --frame: expected json or gwsocket",
      "Usage: scalesocket [OPTIONS] <CMD> [-- <ARGS>...]",
    ]);
  });

  test("an address in use is a clear error, exit 1", async () => {
    const blocker = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    try {
      const proc = Bun.spawn([process.execPath, MAIN, "--addr", `127.0.0.1:${blocker.port}`, "cat"], {
        stderr: "pipe",
        stdout: "pipe",
      });
      procs.push(proc);
      expect(await within(proc.exited, "exit")).toBe(1);
      expect(await new Response(proc.stderr).text()).toContain(`cannot listen on 127.0.0.1:${blocker.port}`);
    } finally {
      blocker.stop(true);
    }
  });
});
