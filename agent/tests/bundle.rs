//! The agent hashes every bundle the compiler wrote to `out/` as the
//! compiler did (its `BUNDLE`).

mod support;

use std::path::Path;

use sitec_agent::os::Os;
use support::bundles;

#[test]
fn every_bundle_in_out_hashes_to_its_bundle_file() {
    let fx = Os::new(Path::new("/"));
    for dir in bundles() {
        let want = std::fs::read_to_string(dir.join("BUNDLE")).unwrap();
        let got = sitec_agent::bundle::hash(&fx, &dir).unwrap();
        assert_eq!(got, want.trim(), "{}", dir.display());
        let m = sitec_agent::bundle::manifest(&fx, &dir).unwrap();
        assert_eq!(m.agent_protocol, sitec_format::AGENT_PROTOCOL);
        assert_eq!(dir.file_name().unwrap().to_str(), Some(m.host.as_str()));
        // The index the shell scripts read says what the manifest says.
        let index = std::fs::read_to_string(dir.join("index")).unwrap();
        let index = sitec_format::Index::parse(&index).unwrap();
        assert_eq!(index, sitec_format::Index::of(&m), "{}", dir.display());
        assert!(!index.files.is_empty());
    }
}
