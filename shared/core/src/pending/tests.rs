use super::*;
use crate::config::parse;
use crate::import_plan::{import_task, pending_entries, repository_floors};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../../examples/pipelines.yaml");
const FS: &str = "fs-0123456789abcdef0";

fn obj(key: &str) -> ObjectRef {
    ObjectRef {
        bucket: "example-training-data".into(),
        key: key.into(),
        version: None,
        time: None,
    }
}

fn entry(keys: &[String]) -> PendingEntry {
    PendingEntry {
        id: "0123456789abcdef0123456789abcdef".into(),
        file_system_id: FS.into(),
        pipelines: BTreeSet::from(["churn".to_owned()]),
        objects: keys.iter().map(|k| obj(k)).collect(),
    }
}

fn summary(key: &str) -> PendingKey {
    match parse_pending_key(FS, key) {
        Some(Listed::Summary(k)) => k,
        other => panic!("{key} read as {other:?}"),
    }
}

#[test]
fn a_key_says_what_the_import_needs_and_reads_back() {
    let keys: Vec<String> = (0..100).map(|i| format!("datasets/churn/day-{}/part={i:05}.csv", i / 50)).collect();
    let e = entry(&keys);
    let key = e.key(&[]);
    assert!(key.len() <= MAX_KEY_BYTES, "{}", key.len());
    assert!(key.starts_with("pending/fs-0123456789abcdef0/0123456789abcdef0123456789abcdef~100~churn~"));
    let back = summary(&key);
    assert_eq!(back, e.summary(&[]));
    assert_eq!(back.objects, 100);
    assert_eq!(back.pipelines, Some(BTreeSet::from(["churn".to_owned()])));
    for k in &keys {
        assert!(
            back.paths.iter().any(|p| p.covers(&obj(k).uri())),
            "{k} not covered by {:?}",
            back.paths
        );
    }
}

#[test]
fn separators_and_odd_characters_in_keys_survive() {
    let keys = vec!["datasets/churn/a~b,c %41*é/x.csv".to_owned()];
    let e = entry(&keys);
    let back = summary(&e.key(&[]));
    assert_eq!(back.paths, vec![obj(&keys[0]).uri()]);
}

#[test]
fn long_keys_collapse_until_the_key_fits_never_above_the_floor() {
    // 100 objects with 600-byte names: no two fit, their common folder does.
    let long = "x".repeat(600);
    let keys: Vec<String> = (0..100).map(|i| format!("datasets/churn/{long}{i}.csv")).collect();
    let floor = S3Uri::new("example-training-data", "datasets/");
    let key = entry(&keys).key(std::slice::from_ref(&floor));
    assert!(key.len() <= MAX_KEY_BYTES);
    assert_eq!(summary(&key).paths, vec![S3Uri::new("example-training-data", "datasets/churn/")]);
}

#[test]
fn a_single_path_too_long_for_the_key_means_the_whole_file_system() {
    let floor = S3Uri::new("example-training-data", &format!("{}/", "f".repeat(990)));
    let keys = vec![format!("{}/a.csv", "f".repeat(990))];
    let key = entry(&keys).key(std::slice::from_ref(&floor));
    assert!(key.len() <= MAX_KEY_BYTES);
    let back = summary(&key);
    assert!(back.paths.is_empty(), "{:?}", back.paths);
    let task = import_task(FS, &[back], 1, &Default::default(), &[floor]);
    assert!(task.paths.is_empty(), "no paths: FSx imports the whole data repository");
}

#[test]
fn too_many_pipeline_names_become_every_pipeline() {
    let mut e = entry(&["datasets/churn/a.csv".to_owned()]);
    e.pipelines = (0..200).map(|i| format!("pipeline-number-{i}")).collect();
    let back = summary(&e.key(&[]));
    assert_eq!(back.pipelines, None);
    let all = BTreeSet::from(["churn".to_owned()]);
    assert_eq!(back.pipelines_or(&all), all);
}

#[test]
fn keys_of_the_old_format_are_read_from_their_body() {
    assert_eq!(
        parse_pending_key(FS, "pending/fs-0123456789abcdef0/abc.json"),
        Some(Listed::Legacy { id: "abc".into() })
    );
    assert_eq!(parse_pending_key(FS, "pending/fs-other/abc.json"), None, "another file system");
    assert_eq!(parse_pending_key(FS, "pending/fs-0123456789abcdef0/a~b~c~d"), None, "not a count");
}

#[test]
fn a_page_of_keys_is_a_follow_up_import_without_reading_a_body() {
    let c = parse(EXAMPLE).expect("valid example");
    let floors = repository_floors(&c, FS);
    // 1,000 batches of 100 uploads: one listing page.
    let listed: Vec<String> = (0..PAGE)
        .map(|b| {
            let objects: Vec<ObjectRef> = (0..100)
                .map(|i| obj(&format!("datasets/churn/burst/day-{}/part-{b:04}-{i:03}.csv", b / 100)))
                .collect();
            let (entries, _) = pending_entries(&c, &objects);
            entries[0].key(&floors)
        })
        .collect();
    let summaries: Vec<PendingKey> = listed.iter().map(|k| summary(k)).collect();
    let task = import_task(FS, &summaries, 1, &c.pipelines[0].import, &floors);
    assert!(task.paths.len() <= crate::import_plan::MAX_TASK_PATHS);
    assert_eq!(
        task.paths,
        (0..10)
            .map(|d| format!("s3://example-training-data/datasets/churn/burst/day-{d}/"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_imported_index_sorts_by_start_and_names_the_task() {
    let a = imported_index_key(FS, 99, "task-a");
    let b = imported_index_key(FS, 100, "task-b");
    let after = imported_index_start_after(FS, 100);
    assert!(a < after && after < b, "{a} {after} {b}");
    assert_eq!(parse_imported_index_key(FS, &b).as_deref(), Some("task-b"));
    assert_eq!(parse_imported_index_key(FS, "imported/fs-0123456789abcdef0/abc"), None);
}

fn key_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9 ~,%*=+é]{1,40}", 1..6).prop_map(|parts| format!("datasets/churn/{}", parts.join("/")))
}

proptest! {
    #[test]
    fn every_key_fits_reads_back_and_covers_its_objects(keys in proptest::collection::vec(key_strategy(), 1..120)) {
        let floor = S3Uri::new("example-training-data", "datasets/");
        let e = entry(&keys);
        let key = e.key(std::slice::from_ref(&floor));
        prop_assert!(key.len() <= MAX_KEY_BYTES);
        let back = summary(&key);
        prop_assert_eq!(&back, &e.summary(std::slice::from_ref(&floor)));
        for k in &keys {
            prop_assert!(back.paths.is_empty() || back.paths.iter().any(|p| p.covers(&obj(k).uri())));
        }
        for p in &back.paths {
            prop_assert!(floor.covers(p));
        }
    }
}
