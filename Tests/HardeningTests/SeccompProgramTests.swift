import CLinux
import XCTest
@testable import Hardening

/// The compiled program's verdicts, checked with an interpreter (no install).
final class SeccompProgramTests: XCTestCase {
    let arch = clinux_audit_arch()
    let allow = SeccompAction.allow.returnValue
    let kill = SeccompAction.killProcess.returnValue

    func verdict(_ filter: SeccompFilter, _ syscall: Syscall, _ args: [UInt64] = [],
                 arch overrideArch: UInt32? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> UInt32 {
        let nr = try XCTUnwrap(syscall.number, "\(syscall) has no number", file: file, line: line)
        return try BPFInterpreter(program: filter.program()).run(nr: nr, arch: overrideArch ?? arch, args: args)
    }

    func testSyscallNamesResolveForThisArchitecture() throws {
        XCTAssertNotEqual(arch, 0)
        #if arch(x86_64)
        XCTAssertEqual(Syscall.read.number, 0)
        XCTAssertEqual(Syscall.openat.number, 257)
        XCTAssertEqual(Syscall.getppid.number, 110)
        XCTAssertEqual(Syscall(number: 63), Syscall.uname)
        #endif
        XCTAssertNil(Syscall("no_such_syscall").number)
        // Every name the policy uses exists on x86_64 (aarch64 lacks a few legacy ones).
        let policy = SeccompFilter.gofer()
        #if arch(x86_64)
        XCTAssertEqual(policy.unavailableSyscalls, [])
        #endif
        XCTAssertEqual(SeccompFilter(allowing: ["no_such_syscall", .read]).unavailableSyscalls, ["no_such_syscall"])
    }

    func testAllowlistAllowsListedAndAppliesViolationActionToTheRest() throws {
        let filter = SeccompFilter(allowing: [.read, .write, .exit_group])
        XCTAssertEqual(try verdict(filter, .read), allow)
        XCTAssertEqual(try verdict(filter, .exit_group), allow)
        XCTAssertEqual(try verdict(filter, .getppid), kill)
        XCTAssertEqual(try verdict(filter, .execve), kill)
        let trapping = SeccompFilter(allowing: [.read], action: .errno(1))
        XCTAssertEqual(try verdict(trapping, .getppid), 0x0005_0001)
    }

    func testForeignArchitectureAndX32AreKilledEvenIfTheNumberIsAllowed() throws {
        let filter = SeccompFilter(allowing: [.read, .write], action: .errno(1))
        // i386's AUDIT_ARCH: syscall 3 is read there, 0 is restart_syscall.
        XCTAssertEqual(try BPFInterpreter(program: filter.program()).run(nr: 0, arch: 0x4000_0003), kill)
        #if arch(x86_64)
        XCTAssertEqual(try BPFInterpreter(program: filter.program()).run(nr: 0x4000_0000, arch: arch), kill)
        XCTAssertEqual(try BPFInterpreter(program: filter.program()).run(nr: 0x4000_0001, arch: arch), kill)
        #endif
    }

    func testArgumentRulesCheckBothHalvesOfTheArgument() throws {
        let filter = SeccompFilter.gofer()
        let F_GETFD: UInt64 = 1, F_SETFL: UInt64 = 4, F_GETOWN: UInt64 = 9, F_SETOWN: UInt64 = 8
        XCTAssertEqual(try verdict(filter, .fcntl, [3, F_GETFD]), allow)
        XCTAssertEqual(try verdict(filter, .fcntl, [3, F_SETFL, 0o4000]), allow)
        XCTAssertEqual(try verdict(filter, .fcntl, [3, F_GETOWN]), kill)
        XCTAssertEqual(try verdict(filter, .fcntl, [3, F_SETOWN, 1]), kill)
        // Upper half not zero: not F_GETFD, whatever the kernel would make of it.
        XCTAssertEqual(try verdict(filter, .fcntl, [3, 0x1_0000_0000 | F_GETFD]), kill)
    }

    func testGoferRulesForThreadsSocketsAndSignals() throws {
        let pid = getpid()
        let filter = SeccompFilter.gofer()
        let threadFlags: UInt64 = 0x3d0f00 // glibc pthread_create: VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
        XCTAssertEqual(try verdict(filter, .clone, [threadFlags]), allow)
        XCTAssertEqual(try verdict(filter, .clone, [0x11]), kill) // fork-like: SIGCHLD only
        XCTAssertEqual(try verdict(filter, .clone3, [0, 88]), SeccompAction.errno(38).returnValue)
        XCTAssertEqual(try verdict(filter, .socket, [1, 1, 0]), allow) // AF_UNIX
        XCTAssertEqual(try verdict(filter, .socket, [2, 1, 0]), kill) // AF_INET
        XCTAssertEqual(try verdict(filter, .tgkill, [UInt64(pid), 7, 6]), allow)
        XCTAssertEqual(try verdict(filter, .tgkill, [1, 1, 9]), kill)
        XCTAssertEqual(try verdict(filter, .prctl, [15]), allow) // PR_SET_NAME
        XCTAssertEqual(try verdict(filter, .prctl, [38, 1]), kill) // PR_SET_NO_NEW_PRIVS
        for denied: Syscall in [.execve, .ptrace, .mount, .uname, .getppid, .kill, .setns, .unshare, .`open`, .process_vm_readv] {
            XCTAssertEqual(try verdict(filter, denied), kill, "\(denied)")
        }
    }

    func testRulesTakePrecedenceOverThePlainList() throws {
        let filter = SeccompFilter(allowing: [.fcntl, .read, .read],
                                   rules: SyscallRule.allow(.fcntl, argument: 1, oneOf: [1]))
        XCTAssertEqual(filter.allowed, [.read])
        XCTAssertEqual(try verdict(filter, .fcntl, [0, 1]), allow)
        XCTAssertEqual(try verdict(filter, .fcntl, [0, 2]), kill)
    }

    func testMaskedConditionsAndMultipleConditions() throws {
        let filter = SeccompFilter(allowing: [], rules: [
            SyscallRule(.mmap, when: [.hasNoBits(2, 0x4), .equals(4, int: -1)]), // no PROT_EXEC, fd -1
        ])
        XCTAssertEqual(try verdict(filter, .mmap, [0, 4096, 0x3, 0x22, UInt64.max, 0]), allow)
        XCTAssertEqual(try verdict(filter, .mmap, [0, 4096, 0x7, 0x22, UInt64.max, 0]), kill)
        XCTAssertEqual(try verdict(filter, .mmap, [0, 4096, 0x3, 0x22, 0xffff_ffff, 0]), kill)
    }

    func testProgramErrors() {
        XCTAssertThrowsError(try SeccompFilter(allowing: [], rules: [SyscallRule(.read, when: [.equals(6, 0)])]).program()) {
            XCTAssertEqual($0 as? HardeningError, .invalidArgumentIndex(6))
        }
        // 60 values × 5 instructions each cannot be jumped over with 8-bit offsets.
        let tooMany = SyscallRule.allow(.fcntl, argument: 1, oneOf: Array(0..<60))
        XCTAssertThrowsError(try SeccompFilter(allowing: [], rules: tooMany).program())
    }

    func testGoferProgramShape() throws {
        let program = try SeccompFilter.gofer().program()
        XCTAssertLessThan(program.count, 400)
        XCTAssertEqual(program.first, BPFInstruction(code: BPFInstruction.loadWordAbsolute, k: 4))
        XCTAssertEqual(program.last, BPFInstruction(code: BPFInstruction.returnConstant, k: kill))
    }
}
