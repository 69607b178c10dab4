// Identifiers written into an image (GPT GUIDs, FAT volume id, VHD unique id): random by default, or derived
// from a seed so the same inputs give byte-identical images.
import * as Address from "@cuvette/protocol/Address"
import { createHash, randomBytes } from "node:crypto"

/** 16 bytes: random, or sha256(seed + purpose) when a seed is given. */
export const idBytes = (seed: string | undefined, purpose: string): Buffer =>
  seed === undefined
    ? randomBytes(16)
    : createHash("sha256").update(`${seed}\0${purpose}`).digest().subarray(0, 16)

/** An RFC 4122 version-4 style GUID string made from 16 bytes. */
export const guidFromBytes = (raw: Uint8Array): string => {
  const b = Buffer.from(raw)
  b[6] = (b[6]! & 0x0f) | 0x40 // RFC 4122: version 4
  b[8] = (b[8]! & 0x3f) | 0x80 // RFC 4122: variant 10
  const h = b.toString("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

/**
 * The on-disk ("mixed-endian") form of a GUID, as GPT and Windows store it: the first three fields
 * little-endian; undefined when `guid` is not a GUID.
 */
export const guidToBytes = (guid: string): Buffer | undefined => {
  if (!Address.isGuid(guid)) return undefined
  const b = Buffer.from(Address.canonicalGuid(guid).replaceAll("-", ""), "hex")
  b.subarray(0, 4).reverse()
  b.subarray(4, 6).reverse()
  b.subarray(6, 8).reverse()
  return b
}
