import type { ArgDef } from "citty";

/** The one usage line, as upstream's clap prints it; every usage error ends with it. */
export const USAGE = "Usage: scalesocket [OPTIONS] <CMD> [-- <ARGS>...]";

/** The sections of `--help`, in the order they are printed. */
export const GROUPS = [
  "Server",
  "Access",
  "Rooms and children",
  "Framing",
  "Output splitting",
  "Limits",
  "Cluster",
  "Observability",
  "Help",
] as const;

export type Group = (typeof GROUPS)[number];

/**
 * One flag, in citty's shape (`type`, `default`, `valueHint`, `alias`), plus what `--help` needs: its group,
 * and `shownDefault` for a default the table cannot hold as a value (it depends on other flags, or is none).
 */
export type Flag = ArgDef & { group: Group; shownDefault?: string };
