/**
 * The command line: argv → what to do (`resolveCli`), and the texts the command prints (`helpText`,
 * `usageErrorText`). `prescan` normalises upstream's flag forms, resolve.ts maps them to a `Config`, and
 * flags.ts holds the one table (citty's command definition) that both of them and `--help` read.
 */
export { UsageError, usageErrorText } from "./errors.ts";
export { USAGE } from "./flags.ts";
export { helpText, useColor } from "./help.ts";
export { prescan } from "./prescan.ts";
export { type CliAction, resolveCli, resolveConfig } from "./resolve.ts";
