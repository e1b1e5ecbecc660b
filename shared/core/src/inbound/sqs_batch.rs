//! The shape on-upload receives on every invocation, read in place: an SQS
//! batch (up to 6 MB) whose bodies are S3 notifications. Parsing it into a
//! `Value` tree, and then every body into another, was most of the time a
//! large batch took; here the JSON text goes straight into borrowed structs
//! that skip every field retrain does not read.
//!
//! Only input of exactly that shape is taken: a field of another type, a
//! duplicate key, an escaped string where a borrowed one is read, another
//! event source or a non-object where an object belongs makes the batch (or
//! that one body) go the general way, through [`decode_into`]. Both ways
//! therefore decode alike, which a property test checks.

use super::{decode_into, push_s3_record, Decoded, S3Fields};
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;

/// The decoded batch, or `None` when it is not an SQS batch of this shape.
pub(super) fn decode(text: &str) -> Option<Decoded> {
    let Object(batch) = serde_json::from_str::<Object<Batch<'_>>>(text).ok()?;
    if !batch.records.iter().all(|Object(r)| r.event_source == "aws:sqs") {
        return None;
    }
    let mut out = Decoded::default();
    for (i, Object(record)) in batch.records.iter().enumerate() {
        let id = record.message_id;
        let label = || id.map_or_else(|| format!("event.Records[{i}]"), |id| format!("message {id}"));
        let Some(body) = &record.body else {
            out.skip(label(), id, "message has no body".to_owned(), true);
            continue;
        };
        match notification(body) {
            Some(records) => {
                for (j, r) in records.iter().enumerate() {
                    push_s3_record(&r.fields(), || format!("{}.Records[{j}]", label()), id, &mut out);
                }
            }
            None => match serde_json::from_str::<Value>(body) {
                Ok(body) => decode_into(&body, &label(), id, &mut out),
                Err(e) => out.skip(label(), id, format!("message body is not JSON: {e}"), true),
            },
        }
    }
    Some(out)
}

/// A body's S3 records, or `None` when it is not a notification of this shape.
fn notification(body: &str) -> Option<Vec<S3Record<'_>>> {
    let Object(n) = serde_json::from_str::<Object<Notification<'_>>>(body).ok()?;
    let records: Vec<S3Record<'_>> = n.records.into_iter().map(|Object(r)| r).collect();
    records.iter().all(|r| r.event_source == Some("aws:s3")).then_some(records)
}

#[derive(Deserialize)]
struct Batch<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<Object<SqsRecord<'a>>>,
}

#[derive(Deserialize)]
struct SqsRecord<'a> {
    #[serde(rename = "eventSource")]
    event_source: &'a str,
    #[serde(rename = "messageId", default, borrow)]
    message_id: Option<&'a str>,
    /// Owned: a body is JSON text inside a JSON string, so it is always escaped.
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct Notification<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<Object<S3Record<'a>>>,
}

#[derive(Deserialize)]
struct S3Record<'a> {
    #[serde(rename = "eventSource", default, borrow)]
    event_source: Option<&'a str>,
    #[serde(rename = "eventName", default, borrow)]
    event_name: Option<&'a str>,
    #[serde(rename = "eventTime", default, borrow)]
    event_time: Option<&'a str>,
    #[serde(default, borrow)]
    s3: Option<Object<S3Entity<'a>>>,
}

#[derive(Deserialize)]
struct S3Entity<'a> {
    #[serde(default, borrow)]
    bucket: Option<Object<Bucket<'a>>>,
    #[serde(default, borrow)]
    object: Option<Object<S3Object<'a>>>,
}

#[derive(Deserialize)]
struct Bucket<'a> {
    #[serde(default, borrow)]
    name: Option<&'a str>,
}

#[derive(Deserialize)]
struct S3Object<'a> {
    #[serde(default, borrow)]
    key: Option<&'a str>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default, borrow)]
    sequencer: Option<&'a str>,
    #[serde(rename = "eTag", default, borrow)]
    e_tag: Option<&'a str>,
    #[serde(default, borrow)]
    etag: Option<&'a str>,
}

impl<'a> S3Record<'a> {
    fn fields(&self) -> S3Fields<'a> {
        let s3 = self.s3.as_ref().map(|Object(s3)| s3);
        let bucket = s3.and_then(|s3| s3.bucket.as_ref()).and_then(|Object(b)| b.name);
        let object = s3.and_then(|s3| s3.object.as_ref()).map(|Object(o)| o);
        S3Fields {
            event_name: self.event_name.unwrap_or(""),
            bucket,
            raw_key: object.and_then(|o| o.key),
            version: object.and_then(|o| o.sequencer.or(o.e_tag).or(o.etag)),
            size: object.and_then(|o| o.size),
            time: self.event_time,
        }
    }
}

/// `T` read from a JSON object only. Derived structs also accept a JSON
/// list (their fields in order), which the general path treats as malformed.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OnlyMaps<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OnlyMaps<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(OnlyMaps(PhantomData)).map(Object)
    }
}
