use super::*;
use proptest::prelude::*;

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn objects(d: &Decoded) -> Vec<String> {
    d.items
        .iter()
        .filter_map(|i| match &i.event {
            Inbound::ObjectCreated(o) => Some(format!("{}/{}", o.object.bucket, o.object.key)),
            _ => None,
        })
        .collect()
}

#[test]
fn s3_notification_keys_are_url_decoded() {
    let d = decode(&fixture("s3-put.json"));
    assert_eq!(objects(&d), vec!["example-training-data/datasets/churn/new batch/part=1.csv"]);
    assert!(d.skipped.is_empty());
}

#[test]
fn the_s3_test_event_is_skipped_with_a_reason() {
    let d = decode(&fixture("s3-test-event.json"));
    assert!(d.items.is_empty());
    assert_eq!(d.skipped.len(), 1);
    assert!(d.skipped[0].reason.contains("s3:TestEvent"));
    assert!(!d.skipped[0].malformed);
}

#[test]
fn a_mixed_sqs_batch_keeps_good_items_and_reports_bad_ones_by_message_id() {
    let d = decode(&fixture("sqs-s3-put.json"));
    assert_eq!(objects(&d).len(), 2);
    assert!(d.items.iter().all(|i| i.message_id.is_some()));
    let malformed: Vec<&Skip> = d.skipped.iter().filter(|s| s.malformed).collect();
    assert_eq!(malformed.len(), 1, "{:#?}", d.skipped);
    assert!(malformed[0].message_id.is_some());
    assert!(malformed[0].reason.contains("not JSON"));
    assert_eq!(d.skipped.iter().filter(|s| s.reason.contains("s3:TestEvent")).count(), 1);
}

#[test]
fn eventbridge_object_created_keys_are_taken_as_they_are() {
    let direct = decode(&fixture("eventbridge-s3-object-created.json"));
    assert_eq!(objects(&direct), vec!["example-training-data/datasets/churn/new batch/part=1.csv"]);
    let via_sqs = decode(&fixture("sqs-eventbridge-s3-object-created.json"));
    assert_eq!(objects(&via_sqs), objects(&direct));
    assert!(via_sqs.items[0].message_id.is_some());
}

#[test]
fn sagemaker_state_changes_decode_tags_as_a_map() {
    let d = decode(&fixture("sagemaker-training-job-state-change-failed-capacity.json"));
    let Some(Inbound::TrainingJobStateChange(c)) = d.items.first().map(|i| &i.event) else {
        panic!("{d:#?}")
    };
    assert_eq!(c.status, "Failed");
    assert!(c.failure_reason.as_deref().is_some_and(|r| r.starts_with("CapacityError")));
    assert_eq!(c.tags.get("retrain:variant").map(String::as_str), Some("v1"));
}

#[test]
fn scheduled_events_carry_their_time() {
    let d = decode(&fixture("scheduled-event.json"));
    let Some(Inbound::Scheduled(s)) = d.items.first().map(|i| &i.event) else {
        panic!("{d:#?}")
    };
    assert!(!s.time.is_empty());
    assert_eq!(s.resources.len(), 1);
}

#[test]
fn retrain_messages_decode_directly_and_from_eventbridge() {
    let d = decode(&serde_json::json!({"kind": "start-sweep", "pipeline": "churn"}));
    assert!(matches!(d.items[0].event, Inbound::Message(Message::StartSweep(_))));
    let eb = serde_json::json!({
        "version": "0", "id": "e1", "detail-type": "DataImportCompleted", "source": "retrain",
        "account": "123456789012", "time": "2026-11-25T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"file_system_id": "fs-12345678", "task_id": "task-1", "pipelines": ["churn"], "settled": ["churn"]}
    });
    let d = decode(&eb);
    assert!(
        matches!(d.items[0].event, Inbound::Message(Message::DataImportCompleted(_))),
        "{d:#?}"
    );
}

#[test]
fn removals_unknown_sources_and_garbage_are_skipped() {
    let removed = serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
        "eventTime": "2026-11-25T10:00:00.000Z", "userIdentity": {}, "requestParameters": {}, "responseElements": {},
        "s3": {"bucket": {"name": "b1b"}, "object": {"key": "k"}}}]});
    let d = decode(&removed);
    assert!(d.items.is_empty() && d.skipped[0].reason.contains("not an object creation"));
    assert!(decode(&serde_json::json!([1, 2])).skipped[0].malformed);
    assert!(decode(&serde_json::json!({"Records": [{"eventSource": "aws:kinesis"}]})).skipped[0]
        .reason
        .contains("aws:kinesis"));
    assert!(decode_bytes(b"{\"Records\": [").skipped[0].reason.contains("not JSON"));
}

#[test]
fn bad_percent_encoding_is_a_reported_skip() {
    assert!(decode_s3_key("a%FF%FEb").is_err());
    assert_eq!(decode_s3_key("a+b%3Dc%2Bd").as_deref(), Ok("a b=c+d"));
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            "Records",
            "eventSource",
            "aws:sqs",
            "aws:s3",
            "body",
            "detail-type",
            "kind",
            "s3:TestEvent",
            "\\PC{0,12}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    "Records",
                    "eventSource",
                    "body",
                    "messageId",
                    "detail-type",
                    "source",
                    "detail",
                    "kind",
                    "Event",
                    "s3",
                    "\\PC{0,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn decoding_arbitrary_json_never_panics(v in arbitrary_json()) {
        let d = decode(&v);
        // Every input is accounted for: something decoded or a reason given.
        prop_assert!(!d.items.is_empty() || !d.skipped.is_empty() || v.get("Records").and_then(Value::as_array).is_some_and(Vec::is_empty));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_bytes(&bytes);
    }
}

#[test]
fn retrain_message_samples_decode_to_their_kind() {
    let kind = |name: &str| match decode(&fixture(name)).items.first().map(|i| i.event.clone()) {
        Some(Inbound::Message(Message::ImportWatch(_))) => "import-watch",
        Some(Inbound::Message(Message::SweepTick(_))) => "sweep-tick",
        Some(Inbound::Message(Message::StartSweep(_))) => "start-sweep",
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(kind("sqs-import-watch.json"), "import-watch");
    assert_eq!(kind("sqs-sweep-tick.json"), "sweep-tick");
    assert_eq!(kind("start-sweep-request.json"), "start-sweep");
    assert_eq!(kind("eventbridge-start-sweep.json"), "start-sweep");
    assert!(decode(&fixture("sqs-import-watch.json")).items[0].message_id.is_some());
}

#[test]
fn a_message_received_before_is_known_with_its_first_receipt() {
    let mut batch = fixture("sqs-import-watch.json");
    assert!(decode(&batch).redelivered.is_empty(), "a first receipt");
    let record = &mut batch["Records"][0];
    record["attributes"]["ApproximateReceiveCount"] = Value::from("3");
    record["attributes"]["ApproximateFirstReceiveTimestamp"] = Value::from("1795618800001");
    let id = record["messageId"].as_str().unwrap_or_default().to_owned();
    assert_eq!(decode(&batch).redelivered.get(&id), Some(&1_795_618_800));
}

/// A field: mostly the first (well-formed) choice, else missing (`None`) or any of the others,
/// so that both the in-place reader and the general path see many batches.
fn field(choices: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
    let good = choices[0].clone();
    prop_oneof![6 => Just(Some(good)), 1 => proptest::option::of(proptest::sample::select(choices))]
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn object_of(fields: Vec<(&'static str, Option<Value>)>) -> Value {
    Value::Object(fields.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))).collect())
}

/// S3 notification records, well-formed or broken in the ways a sender could break them.
fn s3_record_json() -> impl Strategy<Value = Value> {
    let object = (
        field(vec![
            s("datasets/churn/day-1/part-00001.csv"),
            s("a+b%3Dc"),
            s("bad%FF"),
            s("esc\"aped"),
            s("dir/"),
            Value::from(7),
            Value::Null,
        ]),
        field(vec![
            Value::from(2_048_576),
            Value::from(-1),
            Value::from(1.5),
            Value::from(u64::MAX),
            s("12"),
            Value::Null,
        ]),
        field(vec![s("0C0F6F405D6E000001"), Value::Null, Value::from(3)]),
        field(vec![s("d41d8cd98f00b204e9800998ecf8427e"), Value::Null]),
        field(vec![s("etag-eventbridge"), Value::Array(vec![])]),
    )
        .prop_map(|(key, size, sequencer, e_tag, etag)| {
            object_of(vec![
                ("key", key),
                ("size", size),
                ("sequencer", sequencer),
                ("eTag", e_tag),
                ("etag", etag),
            ])
        });
    let bucket = field(vec![s("example-training-data"), s("b\\u0031"), Value::Null, Value::from(1)])
        .prop_map(|name| object_of(vec![("name", name), ("arn", Some(s("arn:aws:s3:::example-training-data")))]));
    let entity = (
        proptest::option::weighted(
            0.95,
            prop_oneof![12 => bucket, 1 => Just(s("bucket")), 1 => Just(Value::Array(vec![s("x")]))],
        ),
        proptest::option::weighted(
            0.95,
            prop_oneof![12 => object, 1 => Just(Value::Null), 1 => Just(Value::Array(vec![Value::from(1)]))],
        ),
    )
        .prop_map(|(bucket, object)| object_of(vec![("s3SchemaVersion", Some(s("1.0"))), ("bucket", bucket), ("object", object)]));
    (
        field(vec![s("aws:s3"), s("aws:s3"), s("aws:sqs"), s("aws:kinesis"), Value::from(1)]),
        field(vec![
            s("ObjectCreated:Put"),
            s("ObjectCreated:CompleteMultipartUpload"),
            s("ObjectRemoved:Delete"),
            Value::Null,
            Value::from(2),
        ]),
        proptest::option::weighted(
            0.95,
            prop_oneof![16 => entity, 1 => Just(Value::Null), 1 => Just(Value::Array(vec![]))],
        ),
    )
        .prop_map(|(source, name, s3)| {
            object_of(vec![
                ("eventVersion", Some(s("2.1"))),
                ("eventSource", source),
                ("eventName", name),
                ("s3", s3),
                (
                    "userIdentity",
                    Some(serde_json::json!({"principalId": "AWS:AIDAINPONIXQXHT3IKHL2"})),
                ),
            ])
        })
}

/// SQS message bodies: notifications mostly, and what else a queue can carry.
fn body_json() -> impl Strategy<Value = Option<Value>> {
    let notification =
        proptest::collection::vec(s3_record_json(), 0..3).prop_map(|records| serde_json::json!({ "Records": records }).to_string());
    proptest::option::weighted(
        0.95,
        prop_oneof![
            24 => notification.prop_map(Value::String),
            1 => Just(Value::String(r#"{"Event": "s3:TestEvent", "Bucket": "b1"}"#.to_owned())),
            1 => Just(Value::String(r#"{"kind": "start-sweep", "pipeline": "churn"}"#.to_owned())),
            1 => Just(Value::String("not json".to_owned())),
            1 => Just(Value::String(r#"{"Records": [{"eventSource": "aws:s3"}], "Records": []}"#.to_owned())),
            1 => arbitrary_json().prop_map(|v| Value::String(v.to_string())),
            1 => Just(Value::Null),
            1 => Just(Value::from(5)),
        ],
    )
}

fn sqs_batch_json() -> impl Strategy<Value = Value> {
    let record = (
        field(vec![s("aws:sqs"), s("aws:sqs"), s("aws:sqs"), s("aws:s3"), Value::Null]),
        field(vec![
            s("059f36b4-87a3-44ab-83d2-000000000001"),
            s("id\\nwith-escape"),
            Value::Null,
            Value::from(9),
        ]),
        body_json(),
    )
        .prop_map(|(source, id, body)| {
            object_of(vec![
                ("messageId", id),
                ("body", body),
                ("attributes", Some(serde_json::json!({"ApproximateReceiveCount": "1"}))),
                ("eventSource", source),
            ])
        });
    prop_oneof![
        8 => proptest::collection::vec(record, 0..4).prop_map(|records| serde_json::json!({ "Records": records })),
        1 => proptest::collection::vec(record_list_item(), 0..2).prop_map(Value::Array),
    ]
}

fn record_list_item() -> impl Strategy<Value = Value> {
    body_json().prop_map(|b| serde_json::json!({ "Records": [], "body": b }))
}

proptest! {
    #[test]
    fn decoding_text_matches_decoding_its_value(v in sqs_batch_json()) {
        prop_assert_eq!(decode_str(&v.to_string()), decode(&v));
    }
}

#[test]
fn a_well_formed_sqs_batch_of_notifications_is_read_in_place() {
    let text = fixture("sqs-s3-put.json").to_string();
    assert_eq!(decode_str(&text), decode(&fixture("sqs-s3-put.json")));
    let batch = serde_json::json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m1",
        "body": serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b1"}, "object": {"key": "a+b.csv", "sequencer": "0A"}}}]}).to_string()}]});
    let fast = sqs_batch::decode(&batch.to_string()).expect("taken by the in-place reader");
    assert_eq!(objects(&fast), ["b1/a b.csv"]);
    assert_eq!(fast, decode(&batch));
    // A list where an object belongs goes the general way, which reports it.
    let listed = serde_json::json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m1",
        "body": serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": [{"name": "b1"}, {"key": "k"}]}]}).to_string()}]});
    let d = decode_str(&listed.to_string());
    assert!(d.items.is_empty() && d.skipped[0].malformed, "{d:?}");
    assert!(sqs_batch::decode(&serde_json::json!([{"Records": []}]).to_string()).is_none());
}
