// A child process for HardeningTests: applies one hardening step, then
// exercises it. Parents read stdout lines and the exit status / signal.
// Glibc only (no Foundation) so the syscalls made after a filter is installed
// are few and predictable.
import Dispatch
import Glibc
import Hardening

func say(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(1, $0, strlen($0)) }
}

func fail(_ line: String) -> Never {
    say("FAIL " + line)
    exit(2)
}

/// Runs `body` on a new pthread and waits for it.
func onNewThread(_ body: @escaping () -> Void) {
    final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    if rc != 0 { fail("pthread_create \(rc)") }
    pthread_join(thread, nil)
}

/// File I/O through the allowed calls: openat, write, pread, fstat, fcntl(F_GETFD), close, unlinkat
/// (the gofer works relative to directory fds, so unlink/open by plain path are not in its policy).
func exerciseFileIO(_ tag: String) {
    let path = "/tmp/hardening-probe-\(getpid())-\(tag)"
    let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
    if fd < 0 { fail("open \(errno)") }
    let payload = "sealed"
    if payload.withCString({ write(fd, $0, 6) }) != 6 { fail("write \(errno)") }
    var buffer = [UInt8](repeating: 0, count: 6)
    if pread(fd, &buffer, 6, 0) != 6 || String(decoding: buffer, as: UTF8.self) != payload { fail("pread") }
    var st = stat()
    if fstat(fd, &st) != 0 || st.st_size != 6 { fail("fstat") }
    if fcntl(fd, F_GETFD) & FD_CLOEXEC == 0 { fail("fcntl") }
    close(fd)
    if unlinkat(AT_FDCWD, path, 0) != 0 { fail("unlinkat \(errno)") }
}

/// Starts a thread that waits on a pipe; `release(then:)` wakes it to run a step.
final class ParkedThread {
    var pipeFDs: [Int32] = [-1, -1]
    var action: () -> Void = {}
    var thread = pthread_t()

    init() {
        if pipe(&pipeFDs) != 0 { fail("pipe") }
        let me = Unmanaged.passRetained(self).toOpaque()
        if pthread_create(&thread, nil, { raw in
            let me = Unmanaged<ParkedThread>.fromOpaque(raw!).takeRetainedValue()
            var byte: UInt8 = 0
            _ = read(me.pipeFDs[0], &byte, 1)
            me.action()
            return nil
        }, me) != 0 { fail("pthread_create") }
    }

    func release(then action: @escaping () -> Void) {
        self.action = action
        var byte: UInt8 = 1
        _ = write(pipeFDs[1], &byte, 1)
        pthread_join(thread, nil)
    }
}

/// A thread that blocks every signal until `unblock(then:)`, which restores
/// its mask (pending signals run then) and runs a step on it.
final class SignalBlockingThread {
    var ready: [Int32] = [-1, -1]
    var go: [Int32] = [-1, -1]
    var action: () -> Void = {}
    var thread = pthread_t()

    init() {
        if pipe(&ready) != 0 || pipe(&go) != 0 { fail("pipe") }
        let me = Unmanaged.passRetained(self).toOpaque()
        if pthread_create(&thread, nil, { raw in
            let me = Unmanaged<SignalBlockingThread>.fromOpaque(raw!).takeRetainedValue()
            var all = sigset_t(), previous = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_BLOCK, &all, &previous)
            var byte: UInt8 = 1
            _ = write(me.ready[1], &byte, 1)
            _ = read(me.go[0], &byte, 1)
            pthread_sigmask(SIG_SETMASK, &previous, nil)
            me.action()
            return nil
        }, me) != 0 { fail("pthread_create") }
        var byte: UInt8 = 0
        _ = read(ready[0], &byte, 1)  // blocking from here on
    }

    func unblock(then action: @escaping () -> Void) {
        self.action = action
        var byte: UInt8 = 1
        _ = write(go[1], &byte, 1)
        pthread_join(thread, nil)
    }
}

func install(_ filter: SeccompFilter) {
    do { try filter.install() } catch { fail("install \(error)") }
}

/// The gofer policy without getppid/uname, which the probes use as the "forbidden" call.
let goferFilter = SeccompFilter.gofer()

let args = CommandLine.arguments
guard args.count >= 2 else { fail("usage: hardening-probe MODE") }
switch args[1] {
case "seccomp-denied":
    // The forbidden call must kill the whole process with SIGSYS.
    install(goferFilter)
    say("installed")
    let parent = getppid()
    say("survived getppid \(parent)")
    exit(0)

case "seccomp-allowed":
    // Allowed calls keep working, on this thread and a thread started afterwards.
    install(goferFilter)
    exerciseFileIO("main")
    onNewThread {
        if !SeccompFilter.isActiveOnCurrentThread { fail("new thread unfiltered") }
        exerciseFileIO("thread")
    }
    say("ok")
    exit(0)

case "seccomp-tsync":
    // A thread that existed before install gets the filter too (TSYNC): its
    // forbidden call kills the process.
    let parked = ParkedThread()
    install(goferFilter)
    parked.release {
        say("thread filtered \(SeccompFilter.isActiveOnCurrentThread)")
        exerciseFileIO("parked")
        say("thread io ok")
        _ = uname(nil)
        say("survived uname")
    }
    exit(0)

case "seccomp-no-tsync":
    // Control for seccomp-tsync: without TSYNC the older thread stays unfiltered.
    let parked = ParkedThread()
    do { try goferFilter.install(allThreads: false) } catch { fail("install \(error)") }
    parked.release { say("thread filtered \(SeccompFilter.isActiveOnCurrentThread)") }
    say("main filtered \(SeccompFilter.isActiveOnCurrentThread)")
    exit(0)

case "seccomp-fcntl":
    // Argument rules: F_GETFD is allowed, F_GETOWN is not.
    install(goferFilter)
    say("getfd \(fcntl(0, F_GETFD) >= 0)")
    _ = fcntl(0, F_GETOWN)
    say("survived F_GETOWN")
    exit(0)

case "seccomp-errno":
    // Per-syscall actions: uname answered with EACCES instead of running.
    install(SeccompFilter(allowing: SeccompFilter.goferAllowlist,
                          rules: SeccompFilter.goferRules() + [.respond(to: .uname, with: .errno(EACCES))]))
    var names = utsname()
    let r = uname(&names)
    let error = errno
    say("uname \(r) errno \(error)")
    exit(0)

case "seccomp-report":
    // Trap + reporter names the missing syscall on stderr, exit 159.
    do { try SeccompFilter.installViolationReporter() } catch { fail("reporter \(error)") }
    install(SeccompFilter.gofer(action: .trap))
    say("installed")
    _ = uname(nil)
    say("survived uname")
    exit(0)

case "core":
    do {
        try Hardening.disableCoreDumps()
        let limit = try Hardening.coreDumpLimit()
        say("dumpable \(try Hardening.isDumpable) core \(limit.soft) \(limit.hard)")
    } catch { fail("core \(error)") }
    exit(0)

case "caps":
    // hardening-probe caps NAME... : keep these, print the status lines, then
    // try a chown to another uid (needs CAP_CHOWN) on a fresh file.
    let kept = Set(args.dropFirst(2).compactMap { name in Capability.allCases.first { "\($0)" == name } })
    do {
        let state = try Hardening.dropCapabilities(keeping: kept)
        say("state \(state)")
    } catch { fail("drop \(error)") }
    let status = (try? readStatus()) ?? ""
    for line in status.split(separator: "\n") where line.hasPrefix("Cap") || line.hasPrefix("NoNewPrivs") {
        say(String(line))
    }
    let path = "/tmp/hardening-probe-\(getpid())-chown"
    let fd = open(path, O_CREAT | O_RDWR, 0o600)
    let rc = fchown(fd, 12345, 12345)
    say("chown \(rc == 0 ? "ok" : "errno \(errno)")")
    close(fd)
    unlink(path)
    exit(0)

case "caps-threaded":
    // Refuses to drop with another thread alive.
    let parked = ParkedThread()
    do {
        try Hardening.dropCapabilities(keeping: [])
        say("dropped")
    } catch { say("refused \(error)") }
    parked.release {}
    exit(0)

case "landlock":
    // hardening-probe landlock DIR OUTSIDE: confine to DIR (as serve confines
    // to its store), then report what opens: a new file in DIR, OUTSIDE, the
    // same on a thread started afterwards, and file I/O in DIR under the gofer's
    // seccomp allowlist installed on top.
    guard args.count == 4 else { fail("usage: landlock DIR OUTSIDE") }
    let (inside, outside) = (args[2], args[3])
    let held = open(inside, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if held < 0 { fail("open \(inside) \(errno)") }
    do {
        let dir = try Landlock.open(inside)
        let abi = try Landlock.restrictThread(to: [Landlock.Rule(descriptor: dir, access: .readWrite(abi: Landlock.abi ?? 1))])
        close(dir)
        say("confined abi \(abi)")
    } catch { fail("landlock \(error)") }
    func tryOpen(_ label: String, _ path: String, _ flags: Int32 = O_RDONLY) {
        let fd = open(path, flags | O_CLOEXEC, 0o600)
        say("\(label) \(fd >= 0 ? "ok" : "errno \(errno)")")
        if fd >= 0 { close(fd) }
    }
    tryOpen("inside", inside + "/made", O_CREAT | O_RDWR)
    tryOpen("outside", outside)
    // Through a descriptor held from before: still judged by where it leads.
    let escape = openat(held, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    say("parent via held fd \(escape >= 0 ? "ok" : "errno \(errno)")")
    onNewThread {
        tryOpen("thread outside", outside)
        tryOpen("thread inside", inside + "/made")
    }
    install(goferFilter)
    let fd = openat(held, "made", O_RDWR | O_CLOEXEC)
    if fd < 0 { fail("openat under seccomp \(errno)") }
    let written = "x".withCString { write(fd, $0, 1) }
    close(fd)
    say("seccomp io \(written == 1 ? "ok" : "errno \(errno)")")
    exit(0)

case "landlock-threads":
    // hardening-probe landlock-threads DIR OUTSIDE: threads that exist before
    // the process is confined are confined too; one that blocks every signal
    // is reported, and confines itself once it unblocks them.
    guard args.count == 4 else { fail("usage: landlock-threads DIR OUTSIDE") }
    let (inside, outside) = (args[2], args[3])
    let early = ParkedThread()
    let blocking = SignalBlockingThread()
    do {
        let dir = try Landlock.open(inside)
        let done = try Landlock.restrictProcess(to: [Landlock.Rule(descriptor: dir, access: .readWrite(abi: Landlock.abi ?? 1))],
                                                timeoutMilliseconds: 200)
        close(dir)
        say("threads \(done.threads) unconfirmed \(done.unconfirmed)")
    } catch { fail("landlock \(error)") }
    let fd = open(outside, O_RDONLY | O_CLOEXEC)
    say("main outside \(fd >= 0 ? "ok" : "errno \(errno)")")
    early.release {
        let fd = open(outside, O_RDONLY | O_CLOEXEC)
        say("early thread outside \(fd >= 0 ? "ok" : "errno \(errno)")")
        let made = open(inside + "/early", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        say("early thread inside \(made >= 0 ? "ok" : "errno \(errno)")")
    }
    blocking.unblock {
        let fd = open(outside, O_RDONLY | O_CLOEXEC)
        say("unblocked thread outside \(fd >= 0 ? "ok" : "errno \(errno)")")
    }
    exit(0)

case "landlock-dispatch":
    // hardening-probe landlock-dispatch DIR [READONLY...]: confined to DIR and
    // the read-only paths (default: the gofer's `Landlock.runtimeReadOnly`),
    // keep libdispatch's pool busy for 3 s so its monitor reads
    // /proc/<tid>/stat of its workers (it crashes the process if it cannot).
    guard args.count >= 3 else { fail("usage: landlock-dispatch DIR [READONLY...]") }
    let readOnly = args.count > 3 ? Array(args.dropFirst(3)) : Landlock.runtimeReadOnly
    do {
        var rules = [Landlock.Rule(descriptor: try Landlock.open(args[2]), access: .readWrite(abi: Landlock.abi ?? 1))]
        for path in readOnly { rules.append(Landlock.Rule(descriptor: try Landlock.open(path), access: .readOnly)) }
        _ = try Landlock.restrictProcess(to: rules)
    } catch { fail("landlock \(error)") }
    // A backlog on a global queue: the monitor only looks while work waits.
    let group = DispatchGroup()
    for _ in 0..<120 {
        DispatchQueue.global().async(group: group) {
            var x: UInt64 = 1
            for i in 0..<2_000_000 { x = x &* 6364136223846793005 &+ UInt64(i) }
            if x == 42 { say("unlikely") }
        }
    }
    group.wait()
    say("dispatch survived")
    exit(0)

default:
    fail("unknown mode \(args[1])")
}

func readStatus() throws -> String {
    let fd = open("/proc/self/status", O_RDONLY)
    if fd < 0 { return "" }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}
