import { afterEach, describe, expect, test } from "bun:test";
import { FIXTURES, killSpawned, spawnServer, TestClient } from "../helpers.ts";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;

afterEach(killSpawned);

function run(argv: string[], cwd?: string) {
  return spawnServer([process.execPath, MAIN, "--addr", "127.0.0.1:0", ...argv], { cwd });
}

describe("start-up", () => {
  test("says where to connect, and where the page is when one is served", async () => {
    const plain = await run(["cat"]);
    expect(plain.log()).toContain(`INFO  clients connect to ws://127.0.0.1:${plain.port}/<room>\n`);
    const page = await run(["--staticdir", FIXTURES, "cat"]);
    expect(page.log()).toContain(
      `clients connect to ws://127.0.0.1:${page.port}/<room>; the page is at http://127.0.0.1:${page.port}/`,
    );
  });

  test("a command that cannot run is a warning that says what to do; the server still starts", async () => {
    const missing = await run(["nosuchcmd"]);
    expect(missing.log()).toContain("WARN  command not found: nosuchcmd; the server starts");
    const here = await run(["no-shebang.sh"], FIXTURES);
    expect(here.log()).toContain("command not found: no-shebang.sh (did you mean ./no-shebang.sh?");
    const noShebang = await run(["./no-shebang.sh"], FIXTURES);
    expect(noShebang.log()).toContain("./no-shebang.sh has no #! line");
    const c = new TestClient(`ws://127.0.0.1:${noShebang.port}/r`);
    expect((await c.waitClosed()).reason).toContain("a script needs a #! line first");
  });

  test("a buffering interpreter without --pty or -u gets a hint, with --pty none", async () => {
    const buffered = await run([`${FIXTURES}unflushed.py`]);
    expect(buffered.log()).toContain("WARN  python3 holds its output back on a pipe");
    const pty = await run(["--pty", `${FIXTURES}unflushed.py`]);
    expect(pty.log()).not.toContain("holds its output back");
  });

  test("joins and leaves are both logged at info", async () => {
    const s = await run(["cat"]);
    const c = await TestClient.open(`ws://127.0.0.1:${s.port}/r`);
    await s.waitLog(/INFO {2}client 1 joined room r from /);
    c.ws.close(4000, "bye");
    await s.waitLog(/INFO {2}client 1 left room r \(4000 bye\)/);
  });
});
