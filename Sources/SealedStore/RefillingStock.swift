import CLinux
import Foundation

/// A bounded stock of things made ahead of need by one background thread, so that the
/// request that needs one only takes it (`SealedStore`'s creation pool; the provider's
/// scratch files).
///
/// This moves work off the request path onto an otherwise idle core; it does not remove any.
/// The thread sleeps until the stock falls to half its capacity, then refills it to the top:
/// one wake-up per `capacity / 2` takes, not one per take. When `make` fails (no space, no
/// descriptors) it waits a second before trying again; meanwhile `take` returns nil and the
/// caller makes what it needs itself, as it would without a stock.
public final class RefillingStock<Item>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Item] = []
    private var stopping = false
    private var finished = false
    private var thread: Thread?
    private let capacity: Int
    private let refillBelow: Int
    private let make: () throws -> Item
    /// Items made, failed attempts (guarded by `condition`).
    private var madeCount = 0
    private var failureCount = 0

    /// Starts the thread (named `name`), which makes up to `capacity` items at once.
    public init(name: String, capacity: Int, make: @escaping () throws -> Item) {
        self.capacity = max(1, capacity)
        refillBelow = max(0, self.capacity / 2)
        self.make = make
        let thread = Thread { [self] in
            // The kernel's name too (Foundation sets only its own): ps, perf and /proc show it.
            _ = clinux_name_this_thread(name)
            // Made ahead on an idle core: never at the expense of a request thread.
            _ = clinux_lower_this_thread_priority()
            run()
        }
        thread.name = name
        self.thread = thread
        thread.start()
    }

    /// An item from the stock, or nil when it is empty or stopped.
    public func take() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping, let item = items.popLast() else { return nil }
        if items.count == refillBelow { condition.signal() }
        return item
    }

    /// Items in stock now.
    public var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count
    }

    /// Items made so far and failed attempts (tests, benchmarks).
    public var statistics: (made: Int, failures: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (madeCount, failureCount)
    }

    /// Waits up to `seconds` until the stock is full; true if it is (tests, benchmarks: right
    /// after the start, or once more than half was taken — it refills only then).
    @discardableResult
    public func waitUntilFull(seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while items.count < capacity && !stopping {
            if !condition.wait(until: deadline) { break }
        }
        return items.count >= capacity
    }

    /// Stops the thread (waiting for an item being made) and hands back what is in stock;
    /// later `take`s return nil. Idempotent: a second call returns nothing.
    public func stop() -> [Item] {
        condition.lock()
        defer { condition.unlock() }
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        let left = items
        items = []
        return left
    }

    private func run() {
        condition.lock()
        while true {
            while !stopping && items.count > refillBelow { condition.wait() }
            if stopping { break }
            // Refill to the top, making each item outside the lock.
            var failed = false
            while !stopping && items.count < capacity {
                condition.unlock()
                let result = Result { try make() }
                condition.lock()
                switch result {
                case .success(let item):
                    items.append(item)
                    madeCount += 1
                    condition.broadcast()   // waitUntilFull
                case .failure:
                    failureCount += 1
                    failed = true
                }
                if failed { break }
            }
            if failed && !stopping {
                _ = condition.wait(until: Date(timeIntervalSinceNow: 1))
                continue
            }
        }
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}
