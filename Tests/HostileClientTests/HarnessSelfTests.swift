import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The checks the hostile cases rely on must themselves be able to fail:
/// the sentinel snapshot sees reads, chmods, xattr changes and new files;
/// the escape scan sees files in /tmp; a missing binary is an error.
final class HarnessSelfTests: XCTestCase {
    func testSnapshotSeesEveryKindOfTouch() throws {
        let touches: [(String, (Sandbox) -> Void)] = [
            ("read of the secret (atime)", { s in _ = FileManager.default.contents(atPath: s.sentinel + "/secret") }),
            ("chmod", { s in _ = chmod(s.sentinel + "/secret", 0o644) }),
            ("xattr", { s in _ = LibcShims.setxattr(s.sentinel + "/secret", "user.pwned", "1", 1, 0) }),
            ("hard link (nlink)", { s in _ = link(s.sentinel + "/secret", s.served + "/stolen") }),
            ("new file in the sentinel", { s in _ = FileManager.default.createFile(atPath: s.sentinel + "/new", contents: nil) }),
            ("new file next to served", { s in _ = mkdir(s.base + "/new", 0o755) }),
            ("utimes of a deep file", { s in _ = try? s.setTimes(s.sentinel + "/sub/deep", atime: 5, mtime: 5) }),
        ]
        for (label, touch) in touches {
            let sandbox = try Sandbox()
            defer { sandbox.remove() }
            let before = sandbox.snapshot()
            XCTAssertEqual(sandbox.snapshot(), before, "\(label): snapshot not stable by itself")
            touch(sandbox)
            XCTAssertNotEqual(sandbox.snapshot(), before, "\(label) went unnoticed")
        }
    }

    func testEscapeScanSeesFilesOutside() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        XCTAssertEqual(sandbox.existingEscapes(), [])
        let path = "/tmp/" + sandbox.escapeName
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        defer { unlink(path) }
        XCTAssertEqual(sandbox.existingEscapes(), [path])
    }

    func testMissingBinaryIsAnError() throws {
        setenv("SEALGOFER_BINARY", "/nonexistent/sealgofer", 1)
        defer { unsetenv("SEALGOFER_BINARY") }
        XCTAssertThrowsError(try GoferProcess.spawn(arguments: [], connectionFD: nil, logPath: "/dev/null"))
    }

    func testBinaryIsBuilt() {
        XCTAssertEqual(access(GoferProcess.binaryPath, X_OK), 0,
                       "\(GoferProcess.binaryPath) missing: run `swift build` before the hostile suite")
    }
}
