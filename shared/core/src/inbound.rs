//! Decoding everything retrain's functions receive into one type. A
//! malformed or unknown item becomes a [`Skip`] with a reason; it never
//! panics and never spoils the good items beside it.

use crate::import_plan::ObjectRef;
use crate::messages::Message;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use crate::events::EVENT_SOURCE;

/// One thing that happened, decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Inbound {
    /// An object was created in S3 (notification or EventBridge "Object Created").
    ObjectCreated(ObjectCreated),
    /// EventBridge "SageMaker Training Job State Change".
    TrainingJobStateChange(JobStateChange),
    /// EventBridge "Scheduled Event".
    Scheduled(Scheduled),
    /// One of retrain's own messages (timers, requests, domain events that drive the next step).
    Message(Message),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCreated {
    pub object: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
}

/// The fields of a training job state change that retrain acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStateChange {
    pub training_job_name: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// `FinalMetricDataList` as (name, value).
    #[serde(default)]
    pub metrics: Vec<(String, f64)>,
    /// `SecondaryStatusTransitions`, times in epoch seconds.
    #[serde(default)]
    pub transitions: Vec<crate::telemetry::Transition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable_seconds: Option<i64>,
    /// `ResourceConfig.InstanceType`: the type the job ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// `TrainingTimeInSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_time_seconds: Option<i64>,
    /// `EnableManagedSpotTraining`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub managed_spot: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    /// The event's `time`, which names the schedule tick.
    pub time: String,
    /// ARNs of the rules or schedules that fired.
    pub resources: Vec<String>,
}

/// A decoded event and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The SQS `messageId` it arrived in, for `batchItemFailures`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The EventBridge event's `id`, stable across EventBridge's redeliveries of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub event: Inbound,
}

/// An input item that leads to nothing, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// Which item: its position, SQS message id or S3 key.
    pub item: String,
    pub reason: String,
    /// The SQS message id, when the item arrived in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// True when the item is malformed (as opposed to valid but of no concern).
    #[serde(default)]
    pub malformed: bool,
}

/// Everything a payload decoded into.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decoded {
    pub items: Vec<Item>,
    pub skipped: Vec<Skip>,
    /// SQS messages received before (`ApproximateReceiveCount` > 1), by
    /// message id: when first received (epoch seconds, 0 if not said).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub redelivered: BTreeMap<String, u64>,
}

impl Decoded {
    fn skip(&mut self, item: String, message_id: Option<&str>, reason: String, malformed: bool) {
        self.skipped.push(Skip {
            item,
            reason,
            message_id: message_id.map(str::to_owned),
            malformed,
        });
    }

    fn push(&mut self, message_id: Option<&str>, event: Inbound) {
        self.push_with_id(message_id, None, event);
    }

    fn push_with_id(&mut self, message_id: Option<&str>, event_id: Option<&str>, event: Inbound) {
        self.items.push(Item {
            message_id: message_id.map(str::to_owned),
            event_id: event_id.map(str::to_owned),
            event,
        });
    }
}

/// Decodes a Lambda payload: an SQS batch, S3 notification, EventBridge event or retrain message.
pub fn decode(payload: &Value) -> Decoded {
    let mut out = Decoded::default();
    decode_into(payload, "event", None, &mut out);
    out
}

/// Decodes raw bytes; invalid JSON is one malformed skip.
pub fn decode_bytes(bytes: &[u8]) -> Decoded {
    match std::str::from_utf8(bytes) {
        Ok(text) => decode_str(text),
        Err(_) => decode_text_slowly(bytes),
    }
}

/// Decodes a payload's JSON text, with the same result as [`decode`] of its
/// parsed value. An SQS batch of S3 notifications (every on-upload
/// invocation, up to 6 MB) is read in place, without a `Value` tree of the
/// batch and of every message body.
pub fn decode_str(text: &str) -> Decoded {
    sqs_batch::decode(text).unwrap_or_else(|| decode_text_slowly(text.as_bytes()))
}

fn decode_text_slowly(bytes: &[u8]) -> Decoded {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => decode(&v),
        Err(e) => {
            let mut out = Decoded::default();
            out.skip("event".to_owned(), None, format!("not JSON: {e}"), true);
            out
        }
    }
}

fn decode_into(payload: &Value, at: &str, message_id: Option<&str>, out: &mut Decoded) {
    let Some(obj) = payload.as_object() else {
        out.skip(
            at.to_owned(),
            message_id,
            format!("expected a JSON object, found {}", json_kind(payload)),
            true,
        );
        return;
    };
    if let Some(records) = obj.get("Records") {
        let Some(records) = records.as_array() else {
            out.skip(format!("{at}.Records"), message_id, "`Records` is not a list".to_owned(), true);
            return;
        };
        for (i, record) in records.iter().enumerate() {
            decode_record(record, &format!("{at}.Records[{i}]"), message_id, out);
        }
        return;
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        let bucket = obj.get("Bucket").and_then(Value::as_str).unwrap_or("?");
        out.skip(
            at.to_owned(),
            message_id,
            format!("s3:TestEvent for bucket {bucket}: S3 sends it once when the notification is configured; nothing to import"),
            false,
        );
        return;
    }
    if obj.contains_key("detail-type") {
        decode_eventbridge(payload, at, message_id, out);
        return;
    }
    if obj.contains_key("kind") {
        match serde_json::from_value::<Message>(payload.clone()) {
            Ok(m) => out.push(message_id, Inbound::Message(m)),
            Err(e) => out.skip(at.to_owned(), message_id, format!("malformed retrain message: {e}"), true),
        }
        return;
    }
    out.skip(
        at.to_owned(),
        message_id,
        "unknown payload: not an SQS batch, S3 notification, EventBridge event or retrain message".to_owned(),
        true,
    );
}

fn decode_record(record: &Value, at: &str, outer_id: Option<&str>, out: &mut Decoded) {
    let source = record.get("eventSource").and_then(Value::as_str).unwrap_or("");
    match source {
        "aws:sqs" => {
            // Read the two fields retrain uses in place: deserializing the whole
            // record into a typed message would copy every body of a 6 MB batch.
            let id = match record.get("messageId") {
                None | Some(Value::Null) => outer_id,
                Some(Value::String(id)) => Some(id.as_str()),
                Some(other) => {
                    out.skip(
                        at.to_owned(),
                        outer_id,
                        format!("malformed SQS record: messageId is {}", json_kind(other)),
                        true,
                    );
                    return;
                }
            };
            let label = id.map(|i| format!("message {i}")).unwrap_or_else(|| at.to_owned());
            if let Some(first) = redelivery(record) {
                out.redelivered.insert(id.unwrap_or(at).to_owned(), first);
            }
            match record.get("body") {
                Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                    Ok(body) => decode_into(&body, &label, id, out),
                    Err(e) => out.skip(label, id, format!("message body is not JSON: {e}"), true),
                },
                None | Some(Value::Null) => out.skip(label, id, "message has no body".to_owned(), true),
                Some(other) => out.skip(label, id, format!("malformed SQS record: body is {}", json_kind(other)), true),
            }
        }
        "aws:s3" => decode_s3_record(record, at, outer_id, out),
        "" => out.skip(at.to_owned(), outer_id, "record has no eventSource".to_owned(), true),
        other => out.skip(at.to_owned(), outer_id, format!("records from {other} are not handled"), true),
    }
}

/// When a message that was received before was first received (epoch
/// seconds; 0 when SQS did not say); `None` on its first receipt.
fn redelivery(record: &Value) -> Option<u64> {
    let attribute = |name: &str| record.pointer(&format!("/attributes/{name}")).and_then(Value::as_str);
    let count: u32 = attribute("ApproximateReceiveCount")?.parse().ok()?;
    (count > 1).then(|| {
        attribute("ApproximateFirstReceiveTimestamp")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(0, |ms| ms / 1000)
    })
}

// Read field by field rather than through `aws_lambda_events`' S3 record:
// that type requires eventTime, userIdentity and requestParameters, which
// retrain never uses, and a record without them is still an upload to import.
fn decode_s3_record(record: &Value, at: &str, message_id: Option<&str>, out: &mut Decoded) {
    let object = record.pointer("/s3/object");
    let fields = S3Fields {
        event_name: record.get("eventName").and_then(Value::as_str).unwrap_or(""),
        bucket: record.pointer("/s3/bucket/name").and_then(Value::as_str),
        raw_key: object.and_then(|o| o.get("key")).and_then(Value::as_str),
        version: object_version(object),
        size: object.and_then(|o| o.get("size")).and_then(Value::as_i64),
        time: record.get("eventTime").and_then(Value::as_str),
    };
    push_s3_record(&fields, || at.to_owned(), message_id, out);
}

/// What retrain reads of an S3 notification record, wherever it was parsed.
struct S3Fields<'a> {
    /// `eventName`, empty when absent.
    event_name: &'a str,
    bucket: Option<&'a str>,
    raw_key: Option<&'a str>,
    version: Option<&'a str>,
    size: Option<i64>,
    /// `eventTime`: when the object was written.
    time: Option<&'a str>,
}

/// The upload an S3 record reports, or why it reports none; `at` names the record.
fn push_s3_record(fields: &S3Fields<'_>, at: impl FnOnce() -> String, message_id: Option<&str>, out: &mut Decoded) {
    let (Some(bucket), Some(raw_key)) = (fields.bucket, fields.raw_key) else {
        out.skip(
            at(),
            message_id,
            "S3 record without s3.bucket.name or s3.object.key".to_owned(),
            true,
        );
        return;
    };
    let name = fields.event_name;
    if !name.starts_with("ObjectCreated:") {
        out.skip(
            format!("s3://{bucket}/{raw_key}"),
            message_id,
            format!("{name:?} is not an object creation"),
            false,
        );
        return;
    }
    match decode_s3_key(raw_key) {
        Ok(key) => out.push(
            message_id,
            Inbound::ObjectCreated(ObjectCreated {
                object: ObjectRef {
                    bucket: bucket.to_owned(),
                    key,
                    version: fields.version.map(str::to_owned),
                    time: fields.time.map(str::to_owned),
                },
                size: fields.size,
            }),
        ),
        Err(reason) => out.skip(format!("s3://{bucket}/{raw_key}"), message_id, reason, true),
    }
}

/// The write an object event reports: its `sequencer`, else its ETag (`eTag` in notifications, `etag` on EventBridge).
fn object_version(object: Option<&Value>) -> Option<&str> {
    let object = object?;
    ["sequencer", "eTag", "etag"]
        .iter()
        .find_map(|f| object.get(*f).and_then(Value::as_str))
}

/// S3 notifications URL-encode keys the way HTML forms do: `+` is a space.
pub fn decode_s3_key(raw: &str) -> Result<String, String> {
    if !raw.contains(['+', '%']) {
        return Ok(raw.to_owned());
    }
    let plus_as_space = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| format!("object key {raw:?} is not valid URL-encoded UTF-8: {e}"))
}

fn decode_eventbridge(payload: &Value, at: &str, message_id: Option<&str>, out: &mut Decoded) {
    let event: EventBridgeEvent<Value> = match serde_json::from_value(payload.clone()) {
        Ok(e) => e,
        Err(e) => {
            out.skip(at.to_owned(), message_id, format!("malformed EventBridge event: {e}"), true);
            return;
        }
    };
    let label = event.id.as_deref().map(|id| format!("event {id}")).unwrap_or_else(|| at.to_owned());
    match (event.source.as_str(), event.detail_type.as_str()) {
        ("aws.s3", "Object Created") => match object_created(&event.detail, payload.get("time").and_then(Value::as_str)) {
            Ok(o) => out.push(message_id, Inbound::ObjectCreated(o)),
            Err(reason) => out.skip(label, message_id, reason, true),
        },
        ("aws.sagemaker", "SageMaker Training Job State Change") => match job_state_change(&event.detail) {
            Ok(c) => out.push(message_id, Inbound::TrainingJobStateChange(c)),
            Err(reason) => out.skip(label, message_id, reason, true),
        },
        ("aws.events" | "aws.scheduler", "Scheduled Event") => {
            let time = event
                .time
                .map(|t| t.to_rfc3339())
                .or_else(|| payload.get("time").and_then(Value::as_str).map(str::to_owned));
            match time {
                Some(time) => out.push(
                    message_id,
                    Inbound::Scheduled(Scheduled {
                        time,
                        resources: event.resources.unwrap_or_default(),
                    }),
                ),
                None => out.skip(label, message_id, "Scheduled Event without `time`".to_owned(), true),
            }
        }
        (EVENT_SOURCE, detail_type) => {
            let mut tagged = event.detail.clone();
            if let Some(map) = tagged.as_object_mut() {
                map.insert("kind".to_owned(), Value::String(detail_type.to_owned()));
            }
            match serde_json::from_value::<Message>(tagged) {
                Ok(m) => out.push_with_id(message_id, event.id.as_deref(), Inbound::Message(m)),
                Err(_) => out.skip(
                    label,
                    message_id,
                    format!("retrain event {detail_type:?} does not start a step here"),
                    false,
                ),
            }
        }
        (source, detail_type) => out.skip(
            label,
            message_id,
            format!("EventBridge events {source:?} / {detail_type:?} are not handled"),
            false,
        ),
    }
}

fn object_created(detail: &Value, time: Option<&str>) -> Result<ObjectCreated, String> {
    let bucket = detail
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or("Object Created without detail.bucket.name")?;
    let raw_key = detail
        .pointer("/object/key")
        .and_then(Value::as_str)
        .ok_or("Object Created without detail.object.key")?;
    Ok(ObjectCreated {
        // Unlike classic notifications, EventBridge carries the key as it is, not URL-encoded.
        object: ObjectRef {
            bucket: bucket.to_owned(),
            key: raw_key.to_owned(),
            version: object_version(detail.get("object")).map(str::to_owned),
            time: time.map(str::to_owned),
        },
        size: detail.pointer("/object/size").and_then(Value::as_i64),
    })
}

fn job_state_change(detail: &Value) -> Result<JobStateChange, String> {
    let text = |field: &str| detail.get(field).and_then(Value::as_str).map(str::to_owned);
    let training_job_name = text("TrainingJobName").ok_or("state change without detail.TrainingJobName")?;
    let status = text("TrainingJobStatus").ok_or("state change without detail.TrainingJobStatus")?;
    let tags = match detail.get("Tags") {
        None | Some(Value::Null) => BTreeMap::new(),
        // EventBridge sends tags as a map; DescribeTrainingJob-style lists are accepted too.
        Some(Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|t| Some((t.get("Key")?.as_str()?.to_owned(), t.get("Value")?.as_str()?.to_owned())))
            .collect(),
        Some(other) => return Err(format!("detail.Tags is {}, expected a map", json_kind(other))),
    };
    let metrics = detail
        .get("FinalMetricDataList")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|m| {
                    let name = m.get("MetricName")?.as_str()?.to_owned();
                    let value = m.get("Value").and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))?;
                    Some((name, value))
                })
                .collect()
        })
        .unwrap_or_default();
    // Events carry times as epoch milliseconds, in strings or numbers.
    let millis = |v: Option<&Value>| {
        v.and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .map(|ms| ms / 1000.0)
    };
    let transitions = detail
        .get("SecondaryStatusTransitions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|t| {
                    Some(crate::telemetry::Transition {
                        status: t.get("Status")?.as_str()?.to_owned(),
                        start: millis(t.get("StartTime"))?,
                        end: millis(t.get("EndTime")),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(JobStateChange {
        training_job_name,
        status,
        secondary_status: text("SecondaryStatus"),
        failure_reason: text("FailureReason"),
        tags,
        metrics,
        transitions,
        billable_seconds: detail.get("BillableTimeInSeconds").and_then(Value::as_i64),
        training_time_seconds: detail.get("TrainingTimeInSeconds").and_then(Value::as_i64),
        managed_spot: detail.get("EnableManagedSpotTraining").and_then(Value::as_bool).unwrap_or(false),
        instance_type: detail
            .get("ResourceConfig")
            .and_then(|r| r.get("InstanceType"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

mod sqs_batch;

#[cfg(test)]
mod tests;
