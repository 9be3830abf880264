//! A bundle's `index` as far as the generations need it: the managed
//! files (`f` records), and generation 0's index of what sitec found.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A generation number; 0 is the backup (the host as sitec found it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gen(pub u64);

impl fmt::Display for Gen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A managed file's record: its path (relative, `etc/...`) and sha256, or
/// in generation 0's index, `None` where sitec found nothing there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub sha256: Option<String>,
}

/// The managed files of one generation, by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Files(pub BTreeMap<PathBuf, FileRecord>);

#[derive(Debug, PartialEq, Eq)]
pub struct IndexError {
    pub line: usize,
    pub why: String,
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

impl Files {
    /// The `f` records of an index (a bundle's or generation 0's); other
    /// records are not the generations' concern.
    pub fn parse(text: &str) -> Result<Files, IndexError> {
        let mut files = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields[0] != "f" {
                continue;
            }
            let err = |why: &str| IndexError {
                line: i + 1,
                why: why.to_string(),
            };
            if fields.len() < 3 {
                return Err(err("an f record needs a path and a sha256"));
            }
            let path = PathBuf::from(fields[1]);
            if path.is_absolute()
                || path
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(err("a managed path is relative, without . or .."));
            }
            let sha256 = match fields[2] {
                "-" => None,
                s => Some(s.to_string()),
            };
            files.insert(path, FileRecord { sha256 });
        }
        Ok(Files(files))
    }

    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.0.keys()
    }

    pub fn contains(&self, p: &std::path::Path) -> bool {
        self.0.contains_key(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f_records_are_read_and_others_left() {
        let f = Files::parse("d\tport\t22\nf\tetc/a\tab12\t0644\tfalse\t-\t\nf\tetc/b\t-\t-\n")
            .unwrap();
        assert_eq!(f.0.len(), 2);
        assert_eq!(f.0[&PathBuf::from("etc/a")].sha256.as_deref(), Some("ab12"));
        assert_eq!(f.0[&PathBuf::from("etc/b")].sha256, None);
    }

    #[test]
    fn a_path_leading_out_is_refused() {
        let e = Files::parse("f\tetc/../../x\tab\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(Files::parse("f\t/etc/x\tab\n").is_err());
        assert!(Files::parse("f\tetc\n").is_err());
    }
}
