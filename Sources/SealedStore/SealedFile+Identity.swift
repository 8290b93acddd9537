extension SealedFile {
    /// The ciphertext file's st_dev and st_ino: lets a caller check that a descriptor it opened
    /// by name is this file (a name can be renamed away between a create and that open).
    public var identity: (device: UInt64, inode: UInt64) { (inode.dev, inode.ino) }
}
