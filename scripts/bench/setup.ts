/** What the benchmarks need from the machine: websocketd (installed if we may), taskset, a description. */
import { cpus, release, totalmem } from "node:os";
import { $ } from "bun";

/**
 * Finds websocketd; when missing and we are root with apt, installs the Debian package. Returns null when it is
 * available, else the reason, and says what to do.
 */
export async function ensureWebsocketd(progress: (line: string) => void): Promise<string | null> {
  if (Bun.which("websocketd")) return null;
  const isRoot = process.getuid?.() === 0;
  if (isRoot && Bun.which("apt-get")) {
    progress("websocketd not found: installing the Debian package (apt-get install websocketd)…");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const install = () => $`apt-get install -y -q websocketd`.env(env).quiet().nothrow();
    if ((await install()).exitCode !== 0) {
      await $`apt-get update -q`.env(env).quiet().nothrow();
      await install();
    }
    if (Bun.which("websocketd")) return null;
    progress("could not install websocketd with apt-get; its column is skipped.");
    return "not installed";
  }
  progress(
    "websocketd not found: install it (Debian/Ubuntu: `sudo apt-get install websocketd`, or a release from " +
      "https://github.com/joewalnes/websocketd) and run again to get its column. Continuing without it.",
  );
  return "not installed";
}

export async function websocketdVersion(): Promise<string> {
  const out = await $`dpkg-query -W -f=\${Version} websocketd`.quiet().nothrow();
  return out.exitCode === 0 ? out.stdout.toString().trim() : "unknown version";
}

/** One line about the machine, for the report. */
export function describeMachine(): string {
  const list = cpus();
  const model = list[0]?.model.trim() ?? "unknown CPU";
  const mem = (totalmem() / 2 ** 30).toFixed(0);
  return `${list.length} × ${model}, ${mem} GiB RAM, Linux ${release()}, Bun ${Bun.version}`;
}
