#!/usr/bin/env bun
/**
 * Copies xterm.js (the npm package @xterm/xterm, a dev dependency) into public/vendor/, where the page loads
 * it from. A symlink would not do: --staticdir refuses every path whose real location is outside its folder.
 * `npm run example:terminal` runs this first, so a fresh clone needs nothing but `npm install`.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";

export const VENDOR = join(import.meta.dir, "public", "vendor");

/** Copies the two files the page needs; the source maps stay behind. */
export function vendorXterm(): void {
  const pkg = dirname(Bun.resolveSync("@xterm/xterm/package.json", import.meta.dir));
  mkdirSync(VENDOR, { recursive: true });
  copyFileSync(join(pkg, "lib", "xterm.mjs"), join(VENDOR, "xterm.mjs"));
  copyFileSync(join(pkg, "css", "xterm.css"), join(VENDOR, "xterm.css"));
}

if (import.meta.main) vendorXterm();
