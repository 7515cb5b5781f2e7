//! Random bytes from the operating system, for the distributed group's session keys and the
//! salts of REST password hashes.

use std::io::Read;

/// Fills `bytes` from `/dev/urandom`.
pub(crate) fn os_random(bytes: &mut [u8]) -> std::io::Result<()> {
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(bytes))
}
