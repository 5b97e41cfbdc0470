//! Datadog-style tags: `key:value` or bare `value`, keys lower-cased, kept as a sorted, de-duplicated set.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a tag or tag set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("tag {tag:?} is {len} characters long; the limit is {max}")]
    TooLong { tag: String, len: usize, max: usize },
    #[error("{count} tags on one point; the limit is {max}")]
    TooMany { count: usize, max: usize },
    #[error("empty tag")]
    Empty,
}

/// Normalizes one tag: trims white space and lower-cases the key (the part before the first `:`); a bare
/// value is kept as it is. Refuses empty tags and tags longer than `max_len` characters.
pub fn normalize_tag(raw: &str, max_len: usize) -> Result<String, TagError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(TagError::Empty);
    }
    let len = t.chars().count();
    if len > max_len {
        return Err(TagError::TooLong {
            tag: t.chars().take(40).collect(),
            len,
            max: max_len,
        });
    }
    Ok(match t.split_once(':') {
        Some((k, v)) if k.chars().any(|c| c.is_uppercase()) => {
            format!("{}:{}", k.to_lowercase(), v)
        }
        _ => t.to_string(),
    })
}

/// A sorted, de-duplicated set of normalized tags. Two points with the same name and the same `TagSet` belong
/// to the same series.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TagSet(Vec<String>);

impl TagSet {
    /// Builds a set from raw tags, normalizing each and enforcing the limits.
    pub fn parse<I, S>(raw: I, max_tags: usize, max_len: usize) -> Result<TagSet, TagError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut tags = Vec::new();
        for r in raw {
            match normalize_tag(r.as_ref(), max_len) {
                Ok(t) => tags.push(t),
                Err(TagError::Empty) => continue,
                Err(e) => return Err(e),
            }
        }
        let set = TagSet::from_normalized(tags);
        if set.0.len() > max_tags {
            return Err(TagError::TooMany {
                count: set.0.len(),
                max: max_tags,
            });
        }
        Ok(set)
    }

    /// Builds a set from tags that are already normalized (sorts and de-duplicates them).
    pub fn from_normalized(mut tags: Vec<String>) -> TagSet {
        tags.sort_unstable();
        tags.dedup();
        TagSet(tags)
    }

    /// The tags, sorted.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values of every tag with this key (`host:a` and `host:b` give `a` and `b`).
    pub fn values_of<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter_map(move |t| match t.split_once(':') {
            Some((k, v)) if k == key => Some(v),
            _ => None,
        })
    }

    /// Whether the set holds exactly this tag.
    pub fn contains(&self, tag: &str) -> bool {
        self.0.binary_search_by(|t| t.as_str().cmp(tag)).is_ok()
    }

    /// Adds tags (already normalized), keeping the set sorted and de-duplicated.
    pub fn extend<I: IntoIterator<Item = String>>(&mut self, more: I) {
        self.0.extend(more);
        self.0.sort_unstable();
        self.0.dedup();
    }
}

impl fmt::Display for TagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &[&str], expected: Result<&[&str], TagError>) {
        let got = TagSet::parse(raw.iter().copied(), 3, 10);
        match expected {
            Ok(tags) => assert_eq!(got.unwrap().as_slice(), tags, "input {raw:?}"),
            Err(e) => assert_eq!(got.unwrap_err(), e, "input {raw:?}"),
        }
    }

    #[test]
    fn parse_table() {
        check(&["b:1", "a:2"], Ok(&["a:2", "b:1"]));
        check(&["Env:Prod", "env:Prod"], Ok(&["env:Prod"]));
        check(&["bare", "bare", " "], Ok(&["bare"]));
        check(&["URL:a/b"], Ok(&["url:a/b"]));
        check(
            &["a", "b", "c", "d"],
            Err(TagError::TooMany { count: 4, max: 3 }),
        );
        check(
            &["k:0123456789"],
            Err(TagError::TooLong {
                tag: "k:0123456789".into(),
                len: 12,
                max: 10,
            }),
        );
    }

    #[test]
    fn values_of_and_contains() {
        let t = TagSet::parse(["host:a", "host:b", "env:x", "hostname:c"], 10, 200).unwrap();
        assert_eq!(t.values_of("host").collect::<Vec<_>>(), ["a", "b"]);
        assert!(t.contains("env:x"));
        assert!(!t.contains("env:y"));
    }
}
