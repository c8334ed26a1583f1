import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commandProblem, notFound, spawnFailure } from "../../src/child/command.ts";
import { bufferingHint, commandWarnings, shebang, startupUrls } from "../../src/startup.ts";

const text = (s: string) => new TextEncoder().encode(s);

describe("startupUrls", () => {
  test.each([
    ["0.0.0.0", false, ["ws://localhost:9000/<room>"]],
    ["::", true, ["ws://localhost:9000/<room>", "http://localhost:9000/"]],
    ["127.0.0.1", true, ["ws://127.0.0.1:9000/<room>", "http://127.0.0.1:9000/"]],
    ["::1", false, ["ws://[::1]:9000/<room>"]],
  ] as const)("%s, serves / %p", (host, servesRoot, urls) => {
    expect(startupUrls(host, 9000, servesRoot)).toEqual([...urls]);
  });
});

describe("bufferingHint", () => {
  const none = {};
  test.each([
    ["python3", ["game.py"], "python3 holds its output back"],
    ["/usr/bin/python3.11", ["game.py"], "python3.11 holds its output back"],
    ["python3", ["game.py", "-u"], "holds its output back"], // -u after the script is the script's
    ["python3", ["-c", "print(1)"], "holds its output back"],
    ["ruby", ["game.rb"], "$stdout.sync = true"],
    ["perl", ["game.pl"], "$| = 1"],
  ] as const)("%s %p: warns", (cmd, args, words) => {
    expect(bufferingHint(cmd, args, false, none)).toContain(words);
  });

  test.each([
    ["python3", ["-u", "game.py"]],
    ["python3", ["-Bu", "game.py"]],
    ["node", ["game.js"]],
    ["php", ["game.php"]],
    ["cat", []],
  ] as const)("%s %p: no hint", (cmd, args) => {
    expect(bufferingHint(cmd, args, false, none)).toBeNull();
  });

  test("no hint under --pty, nor with PYTHONUNBUFFERED passed to the child", () => {
    expect(bufferingHint("python3", ["game.py"], true, none)).toBeNull();
    expect(bufferingHint("python3", ["game.py"], false, { PYTHONUNBUFFERED: "1" })).toBeNull();
  });

  test("a script is judged by its #! line", () => {
    expect(bufferingHint("./game.py", [], false, none, text("#!/usr/bin/env python3\n"))).toContain(
      "python3",
    );
    expect(bufferingHint("./game.py", [], false, none, text("#!/usr/bin/env -S python3 -u\n"))).toBeNull();
    expect(bufferingHint("./game.sh", [], false, none, text("#!/bin/sh\n"))).toBeNull();
  });

  test("shebang", () => {
    expect(shebang(text("#!/usr/bin/perl -w\nprint"))).toEqual({ interpreter: "perl", args: ["-w"] });
    expect(shebang(text("#! /bin/sh"))).toEqual({ interpreter: "sh", args: [] });
    expect(shebang(text("echo hi"))).toBeNull();
  });
});

describe("the command, checked at start-up", () => {
  const dir = mkdtempSync(join(tmpdir(), "scalesocket-startup-"));
  const file = (name: string, body: string, mode: number) => {
    writeFileSync(join(dir, name), body);
    chmodSync(join(dir, name), mode);
  };
  file("ok.sh", "#!/bin/sh\necho hi\n", 0o755);
  file("plain.sh", "echo hi\n", 0o755);
  file("noexec.sh", "#!/bin/sh\n", 0o644);

  test("a runnable script, or a program on PATH: nothing to say", () => {
    expect(commandProblem("./ok.sh", "/usr/bin:/bin", dir)).toBeNull();
    expect(commandProblem("cat", "/usr/bin:/bin", dir)).toBeNull();
  });

  test("not on PATH, with a file of that name here: did you mean ./NAME", () => {
    expect(commandProblem("ok.sh", "/usr/bin:/bin", dir)).toBe(
      "command not found: ok.sh (did you mean ./ok.sh? a file here is run only with a path)",
    );
    expect(commandProblem("nosuchcmd", "/usr/bin:/bin", dir)).toBe("command not found: nosuchcmd");
  });

  test("not executable: chmod +x; no #! line: add one", () => {
    expect(commandProblem("./noexec.sh", "", dir)).toBe(
      "./noexec.sh is not executable: run chmod +x ./noexec.sh",
    );
    expect(commandProblem("./plain.sh", "", dir)).toContain("has no #! line");
    expect(commandProblem("./missing.sh", "", dir)).toBe("./missing.sh does not exist");
  });

  test("the warning says the server starts anyway", () => {
    expect(commandWarnings("nosuchcmd", [], false, {}, "/usr/bin:/bin")[0]).toContain(
      "the server starts, and each room will fail until it is fixed",
    );
  });

  test("notFound looks in the working directory", () => {
    expect(notFound("ok.sh", dir)).toContain("did you mean ./ok.sh?");
  });
});

describe("spawnFailure: errno names in plain words", () => {
  test.each([
    ["ENOEXEC: unknown error, posix_spawn './x'", "a script needs a #! line first"],
    ["EACCES: permission denied, posix_spawn './x'", "run chmod +x ./x"],
    ["ENOENT: no such file or directory, posix_spawn './x'", "no such file"],
    ["something else", "something else"],
  ])("%s", (message, words) => {
    const said = spawnFailure("./x", message);
    expect(said).toStartWith("cannot start ./x: ");
    expect(said).toContain(words);
    expect(said).not.toContain("posix_spawn");
  });
});
