import pkg from "../package.json" with { type: "json" };

/** The version this build reports (`--version`, `SERVER_SOFTWARE`): package.json's, read at build time. */
export const VERSION: string = pkg.version;
