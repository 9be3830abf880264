//! `secrets::private-key`
//!
//! What it catches: a string anywhere in the site that is a PEM private key
//! (`-----BEGIN ... PRIVATE KEY-----`), or, when `--keys DIR` names a
//! directory of WireGuard private keys, a string equal to one of them.
//!
//! Why it matters: out/ is committed and reviewed in pull requests; a
//! private key in the site ends up in git history and in every bundle
//! diff. No field of the schema takes a private key's value: keys are
//! files on the host (`private_key_file`, `tls.key`), listed in the
//! manifest as required secrets. The commonest slip is pasting a member's
//! private key where its public key belongs.
//!
//! Example: `public_key = "<the output of wg genkey>"`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::tree::{FieldPath, Node, Span, Step, Value};

pub(crate) const CODE: &str = "secrets::private-key";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    let mut found = |path: &[Step], span: Option<Span>, text: &str| {
        // A committed secret that is no age file is `secrets::recipient`'s.
        if let [Step::Field(h), _, Step::Field(s), _, Step::Field(a)] = path
            && h == "hosts"
            && s == "secrets"
            && a == "age"
        {
            return;
        }
        let problem = if text.contains("PRIVATE KEY-----") {
            "is a PEM private key".to_string()
        } else if let Some(found) = site
            .private_keys
            .iter()
            .find(|k| !k.key.is_empty() && text.contains(k.key.as_str()))
        {
            format!("is the WireGuard private key in {}", found.file)
        } else {
            return;
        };
        let d = Diagnostic::error(CODE, format!("`{}` {problem}", FieldPath::new(path.to_vec())))
            .help("never write a private key into the site: it would be committed and shown in review; put it in a file on the host and name its path (`private_key_file`, `tls.key`); for `public_key`, write the output of `wg pubkey < KEY`");
        // A key of several lines (PEM) is labelled by its field: its
        // lines are not shown again.
        out.push(match span {
            Some(_) if text.contains('\n') => d.at_name(
                site,
                &FieldPath::new(path.to_vec()),
                "a private key (not shown)",
            ),
            Some(span) => d.at_span(span, "a private key"),
            None => d,
        });
    };
    walk(&site.root, &mut Vec::new(), &mut found);
}

/// What `walk` calls for each string: its path, span and text.
type Found<'a> = dyn FnMut(&[Step], Option<Span>, &str) + 'a;

/// Every string of the tree, in order, with its path and span. The path
/// is built as the walk goes and only copied for a finding: a fleet's site
/// has a million strings.
fn walk(node: &Node, path: &mut Vec<Step>, found: &mut Found) {
    match &node.value {
        Value::String(s) => found(path, node.span, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk(item, path, found);
                path.pop();
            }
        }
        Value::Record(fields) => {
            for (name, field) in fields {
                path.push(Step::Field(name.clone()));
                walk(&field.node, path, found);
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Tag(_) => {}
    }
}
