//! `s3://bucket/prefix` URIs, as FSx and SageMaker take them.

use std::fmt;

/// A parsed `s3://bucket/key-or-prefix` URI.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct S3Uri {
    pub bucket: String,
    /// Key or prefix, without the leading `/`; may be empty.
    pub key: String,
}

impl S3Uri {
    /// Parses `s3://bucket[/key]`; `None` when it is not of that shape or the bucket name is invalid.
    pub fn parse(uri: &str) -> Option<S3Uri> {
        let rest = uri.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        is_bucket_name(bucket).then(|| S3Uri {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    pub fn new(bucket: &str, key: &str) -> S3Uri {
        S3Uri {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }
    }

    /// Whether every object under `other` is also under `self` (prefix match on the key).
    pub fn covers(&self, other: &S3Uri) -> bool {
        self.bucket == other.bucket && other.key.starts_with(&self.key)
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// S3 general purpose bucket naming rules: 3-63 chars of lowercase letters,
/// digits, dots and hyphens, starting and ending with a letter or digit.
pub fn is_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        let uri = S3Uri::parse("s3://example-training-data/datasets/churn/").expect("valid");
        assert_eq!(uri.bucket, "example-training-data");
        assert_eq!(uri.key, "datasets/churn/");
        assert_eq!(uri.to_string(), "s3://example-training-data/datasets/churn/");
    }

    #[test]
    fn bucket_only_has_empty_key() {
        let uri = S3Uri::parse("s3://bucket").expect("valid");
        assert_eq!(uri.key, "");
        assert_eq!(uri.to_string(), "s3://bucket/");
    }

    #[test]
    fn rejects_other_schemes_and_bad_buckets() {
        assert_eq!(S3Uri::parse("https://bucket/key"), None);
        assert_eq!(S3Uri::parse("s3://Bucket/key"), None);
        assert_eq!(S3Uri::parse("s3://ab/key"), None);
        assert_eq!(S3Uri::parse("s3://-bucket/key"), None);
    }

    #[test]
    fn covers_is_a_prefix_match_within_one_bucket() {
        let root = S3Uri::new("b1b", "datasets/");
        assert!(root.covers(&S3Uri::new("b1b", "datasets/churn/x.csv")));
        assert!(!root.covers(&S3Uri::new("b1b", "other/x.csv")));
        assert!(!root.covers(&S3Uri::new("b2b", "datasets/x.csv")));
    }
}
