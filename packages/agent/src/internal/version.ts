/** The agent's version (kept in step with package.json; a constant so `bun build --compile` needs no JSON). */
export const AGENT_VERSION = "0.1.0"
/** The agent's name in Welcome and info. */
export const AGENT_NAME = "cuvette-agent"
