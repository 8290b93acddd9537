import XCTest
@testable import Lisafs

/// The xattr namespace policy lives in the server, so it holds for every
/// provider: a provider that would store anything sees only `user.` names,
/// and names of other namespaces it reports are never listed to the client.
final class ServerXattrPolicyTests: XCTestCase {
    /// Stores xattrs of its single (root) node in memory and records every
    /// name the server passes it.
    final class RecordingProvider: MinimalTestProvider, @unchecked Sendable {
        private let lock = Mutex()
        private var stored: [[UInt8]: [UInt8]] = [
            Array("security.selinux".utf8): Array("system_u:object_r:etc_t:s0".utf8),
            Array("trusted.overlay.opaque".utf8): Array("y".utf8),
            Array("user.kept".utf8): Array("1".utf8),
        ]
        private var seenNames: [String] = []
        var seen: [String] { lock.withLock { seenNames } }

        var supportedMIDs: Set<MID> { [.fGetXattr, .fSetXattr, .fListXattr, .fRemoveXattr] }

        private func record(_ name: [UInt8]) { seenNames.append(String(decoding: name, as: UTF8.self)) }

        func getXattr(_ node: TestHandle, name: [UInt8], size: UInt32) throws -> [UInt8] {
            try lock.withLock {
                record(name)
                guard let value = stored[name] else { throw Errno.ENODATA }
                return value
            }
        }
        func setXattr(_ node: TestHandle, name: [UInt8], value: [UInt8], flags: UInt32) throws {
            lock.withLock { record(name); stored[name] = value }
        }
        func listXattr(_ node: TestHandle, size: UInt64) throws -> [[UInt8]] {
            lock.withLock { stored.keys.sorted { $0.lexicographicallyPrecedes($1) } }
        }
        func removeXattr(_ node: TestHandle, name: [UInt8]) throws {
            try lock.withLock {
                record(name)
                guard stored.removeValue(forKey: name) != nil else { throw Errno.ENODATA }
            }
        }
    }

    func testOnlyTheUserNamespaceReachesTheProvider() throws {
        let provider = RecordingProvider()
        let client = try RawLisafsClient(server: Server(provider: provider))
        defer { client.shutdownAndWait() }
        let root = try client.mount().root.controlFD
        for name in ["security.capability", "security.selinux", "trusted.overlay.redirect", "system.posix_acl_access",
                     "system.posix_acl_default", "xfs.x", "user", "User.x", "usr.x"] {
            let bytes = Array(name.utf8)
            XCTAssertEqual(try client.failure(.fSetXattr, FSetXattrReq(fd: root, flags: 0, name: bytes, value: [1])),
                           .EOPNOTSUPP, "FSetXattr \(name)")
            XCTAssertEqual(try client.failure(.fGetXattr, FGetXattrReq(fd: root, bufSize: 64, name: bytes)),
                           .EOPNOTSUPP, "FGetXattr \(name)")
            XCTAssertEqual(try client.failure(.fRemoveXattr, FRemoveXattrReq(fd: root, name: bytes)),
                           .EOPNOTSUPP, "FRemoveXattr \(name)")
        }
        XCTAssertEqual(provider.seen, [], "no name outside user.* reached the provider")

        _ = try client.call(.fSetXattr, FSetXattrReq(fd: root, flags: 0, name: Array("user.note".utf8), value: [7]),
                            expecting: FSetXattrResp.self)
        let got = try client.call(.fGetXattr, FGetXattrReq(fd: root, bufSize: 64, name: Array("user.note".utf8)),
                                  expecting: FGetXattrResp.self)
        XCTAssertEqual(got.value, [7])
        let listed = try client.call(.fListXattr, FListXattrReq(fd: root, size: 0), expecting: FListXattrResp.self)
        XCTAssertEqual(listed.xattrStrings, ["user.kept", "user.note"], "security.* and trusted.* names are not listed")
        _ = try client.call(.fRemoveXattr, FRemoveXattrReq(fd: root, name: Array("user.note".utf8)),
                            expecting: FRemoveXattrResp.self)
        XCTAssertEqual(provider.seen, ["user.note", "user.note", "user.note"])
    }
}
