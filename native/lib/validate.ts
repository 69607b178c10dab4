// Argument checks shared by Vsock and Hvsock: everything is validated in TS before the addon sees it.
import { invalidArgument } from "./NativeError.js"

export const U32_MAX = 0xffffffff

export const integer = (
  operation: string,
  name: string,
  value: unknown,
  min: number,
  max: number,
  hint = "",
): number => {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    throw invalidArgument(
      operation,
      `${name} must be an integer in ${min}..${max > 0xffff ? `0x${max.toString(16).toUpperCase()}` : max}, got ${typeof value === "number" ? value : JSON.stringify(value)}${hint}`,
    )
  return value
}

// Node timers and poll() take a signed 32-bit millisecond count.
export const timeoutMs = (operation: string, value: unknown, max = 0x7fffffff): number =>
  integer(operation, "timeoutMs", value, 1, max)

export const backlog = (operation: string, value: unknown): number =>
  integer(operation, "backlog", value, 1, 65535)
