/// Why a payload could not be decoded. Every decoding failure is one of these;
/// the server answers it with EINVAL or closes the connection, never traps.
public enum WireError: Error, Equatable, Sendable {
    /// The payload ended before the field being read.
    case truncated(needed: Int, remaining: Int)
    /// A length or count field is larger than the payload could hold.
    case lengthTooLarge(Int)
    /// Bytes were left over after the last field.
    case trailingBytes(Int)
    /// A field holds a value the protocol does not allow.
    case invalidValue(String)
}
