import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The gofer runs with host privileges: extended attributes outside the
/// user namespace (file capabilities, trusted.*, SELinux labels, ACLs) would
/// let the sandbox plant host-side privileges on files it controls.
/// gVisor's own fsgofer answers every xattr request with EOPNOTSUPP.
final class XattrNamespaceTests: HostileTestCase {
    /// A valid vfs_cap_data (revision 2, effective) granting CAP_SYS_ADMIN.
    static let fileCapability: [UInt8] = {
        var w = WireWriter()
        w.u32(0x0200_0001)
        w.u32(1 << 21); w.u32(0)  // permitted, inheritable (low word)
        w.u32(0); w.u32(0)        // high words
        return w.bytes
    }()

    func testPrivilegedNamespacesAreRefused() throws {
        let root = try startAndMount()
        let file = try walkOne(root, "file").controlFD
        let dir = try walkOne(root, "dir").controlFD
        let attempts: [(String, [UInt8])] = [
            ("security.capability", Self.fileCapability),
            ("trusted.overlay.redirect", [UInt8]("/../sentinel")),
            ("trusted.overlay.opaque", [UInt8]("y")),
            ("security.selinux", [UInt8]("system_u:object_r:shadow_t:s0")),
            ("system.posix_acl_access", [2, 0, 0, 0, 1, 0, 7, 0, 0xFF, 0xFF, 0xFF, 0xFF,
                                         4, 0, 7, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x20, 0, 7, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
        ]
        var accepted: [String] = []
        var planted: [String] = []
        for (target, path) in [(file, "file"), (dir, "dir")] {
            for (name, value) in attempts {
                let reply = client.call(.fSetXattr, FSetXattrReq(fd: target, flags: 0, name: [UInt8](name), value: value))
                if reply.errno == nil { accepted.append("\(name) on \(path): \(reply)") }
                var buffer = [UInt8](repeating: 0, count: 256)
                if LibcShims.lgetxattr(sandbox.served + "/" + path, name, &buffer, buffer.count) >= 0 && reply.errno == nil {
                    planted.append("\(name) on \(path)")
                }
            }
        }
        XCTAssertEqual(accepted, [], "FSetXattr outside user.* must fail (EOPNOTSUPP/EPERM)")
        XCTAssertEqual(planted, [], "the sandbox planted privileged xattrs on host files")
        // Reading them is an information leak of host labels; removing them tampers with host policy.
        let label = client.call(.fGetXattr, FGetXattrReq(fd: file, bufSize: 256, name: [UInt8]("security.capability")))
        XCTAssertNotEqual(label.mid, MID.fGetXattr.rawValue, "FGetXattr security.capability answered: \(label)")
    }

    func testUserNamespaceWorksOrIsUnsupported() throws {
        let root = try startAndMount()
        let file = try walkOne(root, "file").controlFD
        let set = client.call(.fSetXattr, FSetXattrReq(fd: file, flags: 0, name: [UInt8]("user.note"), value: [UInt8]("v")))
        if set.errno == nil {
            let got = decode(client.call(.fGetXattr, FGetXattrReq(fd: file, bufSize: 16, name: [UInt8]("user.note"))),
                             FGetXattrResp.self, .fGetXattr)
            XCTAssertEqual(got?.value, [UInt8]("v"))
            XCTAssertEqual(client.call(.fRemoveXattr, FRemoveXattrReq(fd: file, name: [UInt8]("user.note"))).mid,
                           MID.fRemoveXattr.rawValue)
        } else {
            assertError(set, [EOPNOTSUPP], "FSetXattr user.note")
        }
    }
}
