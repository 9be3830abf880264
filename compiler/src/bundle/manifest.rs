//! The bundle's contract with the host, defined in `sitec-format`
//! (`format/src/manifest.rs`), which the host agent shares.

pub(crate) use sitec_format::manifest::{
    AGENT_PROTOCOL, Deploy, FORMAT, Manifest, ManifestFile, Mode, Pull, System,
};
