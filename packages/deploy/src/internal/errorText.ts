// The words of a caught failure for an error's detail: a Node error's own message ("ENOENT: no such file or
// directory, open '/x'") without the "Error: " that String() puts before it.
export const errorText = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))
