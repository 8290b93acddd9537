import Lisafs
@testable import SealedProvider
import XCTest

/// The lifecycle the provider tests share: a fresh store per test, a SealedProvider on it served
/// in-process to gVisor-shaped `LisafsClient` calls, and the store removed afterwards.
class ProviderTestCase: XCTestCase {
    var fixture: StoreFixture!
    var provider: SealedProvider!
    var client: LisafsClient!
    var root: FDID = 0

    override func setUpWithError() throws { fixture = try StoreFixture() }

    override func tearDown() {
        client?.shutdown()
        provider?.shutdown()
        fixture?.remove()
    }

    /// (Re)starts the provider with `configure`d options and mounts it; a running one is
    /// stopped first, as a new sandbox would find the store.
    func start(readonly: Bool = false, _ configure: (inout SealedProvider.Options) -> Void = { _ in }) throws {
        client?.shutdown()
        provider?.shutdown()
        provider = try fixture.provider(fixture.options { $0.readonly = readonly; configure(&$0) })
        client = try LisafsClient(server: Server(provider: provider))
        root = try client.mount().root.controlFD
    }

    /// Ends the connection and the provider so the store can be opened offline.
    func stop() {
        client.shutdown()
        provider.shutdown()
    }
}
