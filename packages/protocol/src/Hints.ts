/**
 * What to try next, in one table: by error code for failures the guest reports (used by the agent's
 * messages and the CLI's), and the one wording for passing a token (the client's and the CLI's).
 * Hints that depend on a transport or a command's paths are built where that context is.
 */

/** How to pass the token an agent requires. */
export const token =
  "pass the agent's token with --token-file FILE or CUVETTE_TOKEN_FILE; in the library, the token or tokenFile option"

const byCode: Partial<Record<string, string>> = {
  EACCES: "the agent's user may not access it: run the agent as root or fix the permissions",
  EPERM: "the agent's user may not do this: run the agent as root",
  EROFS: "the file system is mounted read-only",
  ENOSPC: "free some space on the guest",
  ENOTEMPTY: "use `cuvette rm -r` to remove it with its contents",
  EEXIST: "remove it first or choose another name",
  DENIED: "the agent does not allow it (its --allow and --allow-crash options)",
  UNSUPPORTED: "this agent or guest cannot do it; `cuvette info` lists its capabilities",
  VERSION: "update the agent or cuvette so both speak a common protocol version",
  ETIMEDOUT: "raise --timeout",
}

/** The hint for an error code (an errno name or an AgentError code), if there is one. */
export const forCode = (code: string): string | undefined => byCode[code]
