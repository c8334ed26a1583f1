import { USAGE } from "./flags.ts";

/** A mistake on the command line: printed as one line plus the usage line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** What the command prints on stderr for a {@link UsageError}: the error line, then the usage line. */
export function usageErrorText(err: UsageError): string {
  return `scalesocket: error: ${err.message}\n${USAGE}\n`;
}
