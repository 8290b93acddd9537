import FuzzDriver
import Lisafs

// libFuzzer entry point. The first decode reads straight from libFuzzer's
// exactly-sized buffer (as the server reads from its channel), so
// AddressSanitizer catches any read past the payload.
//
// Properties checked for every input:
// - decoding never traps or reads out of bounds (only throws);
// - a decoded request carries the MID it was decoded under;
// - encode(decode(x)) decodes again, to an equal request;
// - encode(decode(x)) is exactly as long as x: every length is carried by a
//   field and trailing bytes are refused, so only padding contents may differ
//   (padding is ignored on decode, as gVisor does, and re-encoded as zeros).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWireRequest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 2 else { return 0 }
    let rawMID = UInt16(data[0]) | UInt16(data[1]) << 8
    let payload = UnsafeRawBufferPointer(start: data + 2, count: size - 2)
    let request: AnyRequest
    do {
        guard let mid = MID(rawValue: rawMID) else {
            _ = try AnyRequest.decode(mid: rawMID, payload: Array(payload))
            fatalError("MID \(rawMID) is unknown but decoded")
        }
        request = try AnyRequest.decode(mid: mid, payload: payload)
    } catch {
        return 0
    }
    guard request.mid.rawValue == rawMID else {
        fatalError("MID \(rawMID) decoded as \(request.mid)")
    }
    let encoded = request.encoded()
    let again: AnyRequest
    do {
        again = try AnyRequest.decode(mid: request.mid, payload: encoded)
    } catch {
        fatalError("re-encoded \(request) does not decode: \(error)")
    }
    guard again == request else {
        fatalError("round trip changed \(request) into \(again)")
    }
    guard encoded.count == payload.count else {
        fatalError("\(request.mid): \(payload.count)-byte payload re-encodes to \(encoded.count) bytes: \(Array(payload))")
    }
    return 0
}

/// SwiftPM links `main` to this (see FuzzDriver.h); hand over to libFuzzer.
@_cdecl("FuzzWireRequest_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzWireRequest(data, size) }
}

