#if canImport(Glibc)
import Glibc
#endif

/// A joinable OS thread running one closure: each communicator (the main
/// socket and every channel) is served by its own thread, as gVisor runs one
/// goroutine per communicator.
final class ServingThread: @unchecked Sendable {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    private let thread: pthread_t
    private let joinLock = Mutex()
    private var joined = false

    private init(thread: pthread_t) { self.thread = thread }

    /// Starts `body` on a new thread; throws the pthread_create errno on failure.
    static func start(_ body: @escaping () -> Void) throws -> ServingThread {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let body = Unmanaged<Body>.fromOpaque(raw).takeRetainedValue()
            body.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw Errno(rc)
        }
        return ServingThread(thread: thread)
    }

    /// Waits for the thread to finish. Safe to call more than once.
    func join() {
        joinLock.withLock {
            guard !joined else { return }
            joined = true
            pthread_join(thread, nil)
        }
    }

    deinit {
        // A thread nobody joined must not stay a zombie.
        if !joined { pthread_detach(thread) }
    }
}
