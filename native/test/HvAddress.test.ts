import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as HvAddress from "../lib/HvAddress.js"
import { NativeError } from "../lib/NativeError.js"

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ")

describe("HvAddress", () => {
  it("port 0x1337 maps to the vsock template service id and its Windows byte order", () => {
    const id = HvAddress.serviceIdFromPort(0x1337)
    expect(id).toBe("00001337-facb-11e6-bd58-64006a7986d3")
    expect(hex(HvAddress.guidToBytes(id))).toBe("37 13 00 00 cb fa e6 11 bd 58 64 00 6a 79 86 d3")
    expect(HvAddress.portFromServiceId(id)).toBe(0x1337)
    expect(HvAddress.portFromServiceId(HvAddress.HV_GUID_PARENT)).toBeUndefined()
  })

  it("encodes the full 36-byte SOCKADDR_HV for a known VM GUID", () => {
    const vmId = "{12345678-9ABC-DEF0-1122-334455667788}"
    const bytes = HvAddress.encodeSockaddrHv(vmId, HvAddress.serviceIdFromPort(4919))
    expect(bytes.length).toBe(36)
    expect(hex(bytes)).toBe(
      [
        "22 00", // Family = AF_HYPERV (34), little-endian
        "00 00", // Reserved
        "78 56 34 12 bc 9a f0 de 11 22 33 44 55 66 77 88", // VmId: Data1/2/3 little-endian, Data4 raw
        "37 13 00 00 cb fa e6 11 bd 58 64 00 6a 79 86 d3", // ServiceId
      ].join(" "),
    )
    expect(HvAddress.decodeSockaddrHv(bytes)).toEqual({
      vmId: "12345678-9abc-def0-1122-334455667788",
      serviceId: "00001337-facb-11e6-bd58-64006a7986d3",
    })
  })

  it("well-known GUIDs and constants carry the hvsocket.h values", () => {
    expect(HvAddress.HV_GUID_WILDCARD).toBe("00000000-0000-0000-0000-000000000000")
    expect(HvAddress.HV_GUID_ZERO).toBe(HvAddress.HV_GUID_WILDCARD)
    expect(HvAddress.HV_GUID_PARENT).toBe("a42e7cda-d03f-480c-9cc2-a4de20abb878")
    expect(HvAddress.HV_GUID_CHILDREN).toBe("90db8b89-0d35-4f79-8ce9-49ea0ac8b7cd")
    expect(HvAddress.HV_GUID_LOOPBACK).toBe("e0e16197-dd56-4a10-9195-5ee7a155a838")
    expect(HvAddress.HV_GUID_VSOCK_TEMPLATE).toBe("00000000-facb-11e6-bd58-64006a7986d3")
    expect([
      HvAddress.AF_HYPERV,
      HvAddress.HV_PROTOCOL_RAW,
      HvAddress.HVSOCKET_CONNECT_TIMEOUT,
      HvAddress.HVSOCKET_HIGH_VTL,
    ]).toEqual([34, 1, 1, 8])
  })

  it("GUIDs round-trip through text and bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        const guid = HvAddress.guidFromBytes(bytes)
        expect(HvAddress.isGuid(guid)).toBe(true)
        expect(Array.from(HvAddress.guidToBytes(guid))).toEqual(Array.from(bytes))
        expect(HvAddress.parseGuid(`{${guid.toUpperCase()}}`)).toBe(guid)
      }),
    )
    fc.assert(
      fc.property(fc.integer({ min: 0, max: HvAddress.MAX_VSOCK_PORT }), (port) => {
        expect(HvAddress.portFromServiceId(HvAddress.serviceIdFromPort(port))).toBe(port)
      }),
    )
  })

  it.each([
    "",
    "not-a-guid",
    "12345678-9abc-def0-1122-33445566778", // one digit short
    "12345678-9abc-def0-1122-3344556677889",
    "123456789abcdef01122334455667788", // no hyphens
    "{12345678-9abc-def0-1122-334455667788", // unbalanced brace
    "g2345678-9abc-def0-1122-334455667788",
  ])("rejects %j with a clear INVALID_ARGUMENT", (s) => {
    let error: unknown
    try {
      HvAddress.parseGuid(s, "VM id")
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(NativeError)
    expect((error as NativeError).reason).toBe("INVALID_ARGUMENT")
    expect((error as NativeError).message).toMatch(/VM id .* is not a GUID: expected 8-4-4-4-12 hex digits/)
  })

  it("rejects ports outside HvSocket.h's 0..0x7FFFFFFF and short SOCKADDR_HV buffers", () => {
    expect(() => HvAddress.serviceIdFromPort(0x80000000)).toThrow(/0\.\.0x7FFFFFFF/)
    expect(() => HvAddress.serviceIdFromPort(-1)).toThrow(NativeError)
    expect(() => HvAddress.decodeSockaddrHv(new Uint8Array(20))).toThrow(/need 36 bytes/)
  })
})
