import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveStaticPath, serveStatic } from "../../src/static.ts";

/*
 * BASE/
 *   site/            the static root
 *     index.html, style.css, app.js, data.json, notes.txt, blob.bin, "with space.txt"
 *     sub/index.html, sub/page.html
 *     empty/         (no index.html)
 *     loop/index.html -> .        (an index that is the directory itself)
 *     inside-link -> style.css, dir-link -> sub
 *     outside-link -> ../outside/secret.txt, outdir-link -> ../outside
 *     evil-link -> ../site-evil/x.txt   (a sibling whose name starts with the root's name)
 *   outside/secret.txt
 *   site-evil/x.txt
 */
const BASE = realpathSync(mkdtempSync(join(tmpdir(), "scalesocket-static-")));
const ROOT = join(BASE, "site");
afterAll(() => rmSync(BASE, { recursive: true, force: true }));

const FILES: Record<string, string> = {
  "index.html": "<h1>root</h1>",
  "style.css": "body{}",
  "app.js": "console.log(1)",
  "data.json": '{"a":1}',
  "notes.txt": "notes",
  "blob.bin": "\x00\x01",
  "with space.txt": "space",
  "sub/index.html": "<h1>sub</h1>",
  "sub/page.html": "<p>page</p>",
};
for (const dir of ["site/sub", "site/empty", "site/loop", "outside", "site-evil"]) {
  mkdirSync(join(BASE, dir), { recursive: true });
}
for (const [name, body] of Object.entries(FILES)) writeFileSync(join(ROOT, name), body);
writeFileSync(join(BASE, "outside/secret.txt"), "secret");
writeFileSync(join(BASE, "site-evil/x.txt"), "evil");
symlinkSync(".", join(ROOT, "loop/index.html"));
writeFileSync(join(ROOT, ".env"), "SECRET=1");
mkdirSync(join(ROOT, ".git"));
writeFileSync(join(ROOT, ".git/config"), "[core]");
mkdirSync(join(ROOT, ".well-known"));
writeFileSync(join(ROOT, ".well-known/security.txt"), "Contact: x");
symlinkSync("style.css", join(ROOT, "inside-link"));
symlinkSync("sub", join(ROOT, "dir-link"));
symlinkSync("../outside/secret.txt", join(ROOT, "outside-link"));
symlinkSync("../outside", join(ROOT, "outdir-link"));
symlinkSync("../site-evil/x.txt", join(ROOT, "evil-link"));

describe("resolveStaticPath", () => {
  const served: [string, string][] = [
    ["/", "index.html"],
    ["", "index.html"],
    ["/index.html", "index.html"],
    ["/style.css", "style.css"],
    ["/sub", "sub/index.html"],
    ["/sub/", "sub/index.html"],
    ["/sub/page.html", "sub/page.html"],
    ["//sub//page.html", "sub/page.html"],
    ["/sub%2Fpage.html", "sub/page.html"],
    ["/with%20space.txt", "with space.txt"],
    ["/%73tyle.css", "style.css"],
    ["/inside-link", "style.css"],
    ["/dir-link", "sub/index.html"],
    ["/dir-link/page.html", "sub/page.html"],
    ["/notes.txt/", "notes.txt"],
    ["/.well-known/security.txt", ".well-known/security.txt"],
  ];
  test.each(served)("%j serves %s", async (urlPath, file) => {
    expect(await resolveStaticPath(ROOT, urlPath)).toBe(join(ROOT, file));
  });

  const refused: [string, string][] = [
    ["a missing file", "/nope.html"],
    ["a missing directory", "/nope/index.html"],
    ["a directory without index.html", "/empty"],
    ["a directory without index.html, with a slash", "/empty/"],
    ["a file below a file", "/notes.txt/x"],
    ["an index.html that links to its own directory", "/loop"],
    ["a symlink out of the root", "/outside-link"],
    ["a file through a directory symlink out of the root", "/outdir-link/secret.txt"],
    ["a symlink to a sibling with the root's name as prefix", "/evil-link"],
    ["..", "/../outside/secret.txt"],
    [".. after a directory", "/sub/../index.html"],
    [".", "/./index.html"],
    ["a trailing ..", "/sub/.."],
    ["%2e%2e", "/%2e%2e/outside/secret.txt"],
    ["%2E%2E%2F", "/%2E%2E%2Foutside%2Fsecret.txt"],
    ["%2e%2e%2f twice under a directory", "/sub/%2e%2e%2f%2e%2e%2foutside/secret.txt"],
    ["a mixed .%2e", "/.%2e/outside/secret.txt"],
    ["%2e", "/%2e/index.html"],
    ["a backslash", "/sub\\..\\index.html"],
    ["an encoded backslash", "/..%5Coutside%5Csecret.txt"],
    ["an encoded backslash inside a name", "/sub%5Cpage.html"],
    ["an encoded NUL", "/index.html%00.txt"],
    ["an encoded NUL alone", "/%00"],
    ["an undecodable %zz", "/%zz"],
    ["a lone %", "/index%.html"],
    ["invalid UTF-8", "/%C3%28"],
    ["an absolute path in the URL", "//etc/passwd"],
    ["a hidden file", "/.env"],
    ["a file in a hidden directory", "/.git/config"],
    ["an encoded hidden file", "/%2eenv"],
  ];
  test.each(refused)("%s is refused", async (_name, urlPath) => {
    expect(await resolveStaticPath(ROOT, urlPath)).toBeNull();
  });

  test("a root of / serves files below it", async () => {
    const file = join(ROOT, "notes.txt");
    expect(await resolveStaticPath("/", file)).toBe(file);
  });
});

describe("serveStatic", () => {
  const request = (method: string, path: string) =>
    serveStatic(ROOT, new Request(`http://x${path}`, { method }), path);

  const types: [string, RegExp, string][] = [
    ["/", /^text\/html/, FILES["index.html"] as string],
    ["/sub/", /^text\/html/, FILES["sub/index.html"] as string],
    ["/style.css", /^text\/css/, FILES["style.css"] as string],
    ["/app.js", /^(text|application)\/javascript/, FILES["app.js"] as string],
    ["/data.json", /^application\/json/, FILES["data.json"] as string],
    ["/notes.txt", /^text\/plain/, FILES["notes.txt"] as string],
    ["/blob.bin", /^application\/octet-stream/, FILES["blob.bin"] as string],
  ];
  test.each(types)("GET %s: 200, its content type and body", async (path, type, body) => {
    const res = await request("GET", path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(type);
    expect(await res.text()).toBe(body);
  });

  test.each(types)("HEAD %s: the headers and no body", async (path, type, body) => {
    const res = await request("HEAD", path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(type);
    expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength(body)));
    expect(res.body).toBeNull();
    expect(await res.text()).toBe("");
  });

  test.each(["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])("%s: 405 with Allow", async (method) => {
    const res = await request(method, "/index.html");
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
  });

  test.each([
    ["GET", "/nope"],
    ["HEAD", "/nope"],
    ["GET", "/outside-link"],
    ["GET", "/%2e%2e/outside/secret.txt"],
    ["GET", "/empty/"],
  ])("%s %s: 404", async (method, path) => {
    const res = await request(method, path);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain("secret");
  });

  test("a path normalised by the URL parser still cannot leave the root", async () => {
    const { pathname } = new URL("http://x/sub/%2e%2e/%2e%2e/outside/secret.txt");
    const res = await serveStatic(ROOT, new Request("http://x/"), pathname);
    expect(res.status).toBe(404);
  });
});
