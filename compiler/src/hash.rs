//! SHA-256 in lowercase hex: the one hashing helper of every stage (the
//! cache's input hashes, render keys, bundle hashes), the very one the
//! host agent hashes bundles with (`sitec-format`). Belongs to no stage,
//! so no stage borrows it from a later one.

pub(crate) use sitec_format::listing::{hex, sha256_hex};
