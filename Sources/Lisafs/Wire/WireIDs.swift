/// Scalar identifiers used across lisafs messages (gVisor: lisafs.UID, GID, FDID).
/// Plain aliases, not wrappers, so they marshal as the bare integers Go uses.
public typealias UID = UInt32
public typealias GID = UInt32
/// Server-assigned file descriptor ID; 0 is never a valid FD (Go: InvalidFDID).
public typealias FDID = UInt64
/// Linux mode_t as carried by create requests (Go: linux.FileMode, 16 bits).
public typealias FileMode = UInt16

/// Sentinels meaning "no valid ID" (Go: NoUID / NoGID = math.MaxUint32).
public let NoUID: UID = .max
public let NoGID: GID = .max
public let InvalidFDID: FDID = 0
