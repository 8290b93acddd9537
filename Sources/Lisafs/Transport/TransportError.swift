/// Why a communicator could not receive or send a message. Any of these ends
/// the communicator: the serving thread stops and the caller tears it down.
public enum TransportError: Error, Equatable, Sendable {
    /// The peer hung up after sending part of a message header.
    case truncatedHeader(received: Int)
    /// The peer hung up before sending the whole payload its header announced.
    case truncatedPayload(expected: Int, received: Int)
    /// A payload longer than the communicator's maximum message size.
    case messageTooLarge(length: UInt64, max: UInt32)
    /// More FDs than one message can carry.
    case tooManyFDs(Int)
    /// The communicator was shut down (locally, or by the peer on a channel).
    case shutDown
    /// The peer broke the transport protocol (bad control word, bad length,
    /// calls out of order).
    case protocolViolation(String)
    /// A system call failed.
    case systemCall(String, errno: Int32)
    /// The communicator cannot be built with these parameters.
    case invalidConfiguration(String)
}
