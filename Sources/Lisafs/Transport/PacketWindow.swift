import CLinux
import Glibc

/// One flipcall packet window: a page-rounded region of a sealed memfd mapped
/// MAP_SHARED, laid out as gVisor's pkg/flipcall expects:
///
///     offset 0  u32  connection state (the futex word)
///     offset 4  u32  datagram length
///     offset 8  8 bytes unused
///     offset 16 datagram (dataCapacity = length - 16 bytes)
///
/// The client maps the same file, so every byte here may change under us at
/// any time; callers copy what they read before trusting it.
final class PacketWindow {
    static let headerBytes = 16

    let base: UnsafeMutableRawPointer
    let length: Int

    /// Creates a window able to carry `dataCapacity` bytes. Returns the window
    /// and the memfd behind it (offset 0), which the caller owns and donates.
    static func create(dataCapacity: UInt64) throws -> (PacketWindow, memfd: Int32) {
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let needed = dataCapacity + UInt64(headerBytes)
        let length = (needed + page - 1) / page * page
        // gVisor's endpoint rejects windows longer than UInt32.max.
        guard length <= UInt64(UInt32.max) else {
            throw TransportError.invalidConfiguration("packet window of \(length) bytes exceeds 4 GiB")
        }
        let fd = clinux_sealed_memfd("lisafs-flipcall-window", length)
        guard fd >= 0 else { throw TransportError.systemCall("memfd_create", errno: errno) }
        guard let base = clinux_map_shared(fd, length, 0) else {
            let err = errno
            _ = Glibc.close(fd)
            throw TransportError.systemCall("mmap", errno: err)
        }
        return (PacketWindow(base: base, length: Int(length)), fd)
    }

    private init(base: UnsafeMutableRawPointer, length: Int) {
        self.base = base
        self.length = length
    }

    deinit { _ = clinux_unmap(base, UInt64(length)) }

    var dataCapacity: UInt32 { UInt32(length - Self.headerBytes) }
    var connectionState: UnsafeMutablePointer<UInt32> { base.assumingMemoryBound(to: UInt32.self) }
    var dataLength: UnsafeMutablePointer<UInt32> { (base + 4).assumingMemoryBound(to: UInt32.self) }
    var data: UnsafeMutableRawPointer { base + Self.headerBytes }
}
