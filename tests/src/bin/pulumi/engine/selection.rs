//! `--target`, `--exclude` and their `-dependents`: which resources an operation may touch.

use std::collections::BTreeSet;

use crate::context::Ctx;

pub(super) fn glob_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == text;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// Which resources an operation may touch (`--target`, `--exclude` and their `-dependents`).
pub(super) struct Selection {
    pub(super) targets: Vec<String>,
    pub(super) target_dependents: bool,
    pub(super) excludes: Vec<String>,
    pub(super) exclude_dependents: bool,
}

impl Selection {
    pub(super) fn from(ctx: &Ctx) -> Selection {
        Selection {
            targets: ctx.args.values("target"),
            target_dependents: ctx.args.bool("target-dependents"),
            excludes: ctx.args.values("exclude"),
            exclude_dependents: ctx.args.bool("exclude-dependents"),
        }
    }

    pub(super) fn restricted(&self) -> bool {
        !self.targets.is_empty() || !self.excludes.is_empty()
    }

    /// Decides for each resource in order; `links` are its parent and dependencies.
    pub(super) fn decide(&self, resources: &[(String, Vec<String>)]) -> BTreeSet<String> {
        let mut chosen = BTreeSet::new();
        let mut excluded = BTreeSet::new();
        for (urn, links) in resources {
            let is_excluded = self.excludes.iter().any(|p| glob_match(p, urn))
                || (self.exclude_dependents && links.iter().any(|l| excluded.contains(l)));
            if is_excluded {
                excluded.insert(urn.clone());
                continue;
            }
            let is_target = self.targets.is_empty()
                || self.targets.iter().any(|p| glob_match(p, urn))
                || (self.target_dependents && links.iter().any(|l| chosen.contains(l)));
            if is_target {
                chosen.insert(urn.clone());
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_selections_follow_dependencies() {
        assert!(glob_match(
            "urn:*::bucket",
            "urn:pulumi:dev::p::aws:s3:Bucket::bucket"
        ));
        assert!(!glob_match(
            "urn:*::bucket",
            "urn:pulumi:dev::p::aws:s3:Bucket::other"
        ));
        let res = vec![
            ("a".to_owned(), vec![]),
            ("b".to_owned(), vec!["a".to_owned()]),
            ("c".to_owned(), vec![]),
        ];
        let sel = |t: &[&str], dep: bool| Selection {
            targets: t.iter().map(|s| (*s).to_owned()).collect(),
            target_dependents: dep,
            excludes: vec![],
            exclude_dependents: false,
        };
        assert_eq!(sel(&["a"], false).decide(&res).len(), 1);
        assert_eq!(sel(&["a"], true).decide(&res).len(), 2);
        assert_eq!(sel(&[], false).decide(&res).len(), 3);
        let ex = Selection {
            targets: vec![],
            target_dependents: false,
            excludes: vec!["a".into()],
            exclude_dependents: true,
        };
        assert_eq!(
            ex.decide(&res).into_iter().collect::<Vec<_>>(),
            vec!["c".to_owned()]
        );
    }
}
