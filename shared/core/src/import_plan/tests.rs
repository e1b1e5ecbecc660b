use super::*;
use crate::config::parse;
use crate::pending::PendingKey;
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../../examples/pipelines.yaml");

fn config() -> Config {
    parse(EXAMPLE).expect("valid example")
}

fn obj(key: &str) -> ObjectRef {
    ObjectRef {
        bucket: "example-training-data".into(),
        key: key.into(),
        version: None,
        time: None,
    }
}

#[test]
fn triggers_match_bucket_prefix_and_suffix() {
    let c = config();
    let churn = &c.pipelines[0];
    assert!(watches(churn, &obj("datasets/churn/a.csv")));
    assert!(!watches(churn, &obj("datasets/churn/a.parquet")), "suffix");
    assert!(!watches(churn, &obj("datasets/other/a.csv")), "prefix");
    assert!(
        !watches(
            churn,
            &ObjectRef {
                bucket: "else".into(),
                key: "datasets/churn/a.csv".into(),
                version: None,
                time: None,
            }
        ),
        "bucket"
    );
    assert!(!watches(churn, &obj("datasets/churn/folder.csv/")), "folder placeholder");
}

#[test]
fn a_batch_becomes_one_entry_per_file_system_with_a_stable_id() {
    let c = config();
    let objects = vec![
        obj("datasets/churn/b.csv"),
        obj("datasets/churn/a.csv"),
        obj("datasets/churn/a.csv"),
    ];
    let (entries, unmatched) = pending_entries(&c, &objects);
    assert!(unmatched.is_empty());
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].objects.len(), 2, "duplicates within a batch collapse");
    assert_eq!(entries[0].pipelines.iter().collect::<Vec<_>>(), vec!["churn"]);
    let reordered = vec![obj("datasets/churn/a.csv"), obj("datasets/churn/b.csv")];
    assert_eq!(
        pending_entries(&c, &reordered).0[0].id,
        entries[0].id,
        "order does not change the id"
    );
    assert!(entries[0].key(&[]).starts_with("pending/fs-0123456789abcdef0/"));
}

#[test]
fn efs_only_and_foreign_keys_are_reported() {
    let c = config();
    let (entries, unmatched) = pending_entries(&c, &[obj("home/alice/fraud/x.csv"), obj("elsewhere/x")]);
    assert!(entries.is_empty());
    assert_eq!(unmatched[0].1, Unmatched::OnlyEfs(vec!["fraud-efs".into()]));
    assert_eq!(unmatched[1].1, Unmatched::NoPipeline);
}

#[test]
fn the_import_task_has_s3_paths_report_and_a_token() {
    let c = config();
    let (entries, _) = pending_entries(&c, &[obj("datasets/churn/new batch/part=1.csv")]);
    let entries: Vec<PendingKey> = entries.iter().map(|e| e.summary(&[])).collect();
    let task = import_task(
        "fs-0123456789abcdef0",
        &entries,
        1,
        &c.pipelines[0].import,
        &repository_floors(&c, "fs-0123456789abcdef0"),
    );
    assert_eq!(task.task_type, "IMPORT_METADATA_FROM_REPOSITORY");
    assert_eq!(task.paths, vec!["s3://example-training-data/datasets/churn/new batch/part=1.csv"]);
    assert!(!task.report.enabled);
    assert!(task.client_request_token.len() <= 63);
    let again = import_task("fs-0123456789abcdef0", &entries, 1, &c.pipelines[0].import, &[]);
    assert_eq!(task.client_request_token, again.client_request_token, "same entries, same token");
    let retry = import_task("fs-0123456789abcdef0", &entries, 2, &c.pipelines[0].import, &[]);
    assert_ne!(task.client_request_token, retry.client_request_token, "a retry is a new task");
}

#[test]
fn a_report_path_enables_the_failed_files_report() {
    let settings = ImportSettings {
        report_path: Some("s3://example-training-data/fsx-reports/".into()),
        ..Default::default()
    };
    let task = import_task("fs-12345678", &[], 1, &settings, &[]);
    assert!(task.report.enabled);
    assert_eq!(task.report.scope.as_deref(), Some("FAILED_FILES_ONLY"));
    assert_eq!(task.report.format.as_deref(), Some("REPORT_CSV_20191124"));
}

#[test]
fn collapse_drops_covered_paths_and_duplicates() {
    let uris = vec![
        S3Uri::new("b1b", "d/x/1.csv"),
        S3Uri::new("b1b", "d/x/"),
        S3Uri::new("b1b", "d/x/1.csv"),
        S3Uri::new("b1b", "d/y/2.csv"),
    ];
    let out = collapse(uris, &[], 100);
    assert_eq!(out, vec![S3Uri::new("b1b", "d/x/"), S3Uri::new("b1b", "d/y/2.csv")]);
}

#[test]
fn collapse_of_many_files_goes_to_their_folders_not_above_the_floor() {
    let uris: Vec<S3Uri> = (0..300)
        .map(|i| S3Uri::new("b1b", &format!("data/day{}/part-{i}.csv", i % 3)))
        .collect();
    let out = collapse(uris, &[S3Uri::new("b1b", "data/")], 100);
    assert_eq!(
        out,
        vec![
            S3Uri::new("b1b", "data/day0/"),
            S3Uri::new("b1b", "data/day1/"),
            S3Uri::new("b1b", "data/day2/")
        ]
    );
    let flat: Vec<S3Uri> = (0..300).map(|i| S3Uri::new("b1b", &format!("data/part-{i}.csv"))).collect();
    assert_eq!(collapse(flat, &[S3Uri::new("b1b", "data/")], 100), vec![S3Uri::new("b1b", "data/")]);
}

fn key_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof!["[a-c]{1,2}", "[a-z0-9 =+%]{1,6}"], 1..5).prop_map(|parts| format!("root/{}", parts.join("/")))
}

proptest! {
    #[test]
    fn import_paths_never_exceed_100_and_cover_every_key(keys in proptest::collection::vec(key_strategy(), 1..400)) {
        let floor = S3Uri::new("example-training-data", "root/");
        let uris: Vec<S3Uri> = keys.iter().map(|k| S3Uri::new("example-training-data", k)).collect();
        let paths = collapse(uris.clone(), std::slice::from_ref(&floor), MAX_TASK_PATHS);
        prop_assert!(paths.len() <= MAX_TASK_PATHS);
        prop_assert!(!paths.is_empty());
        for uri in &uris {
            prop_assert!(paths.iter().any(|p| p.covers(uri)), "{} not covered by {:?}", uri, paths);
        }
        for p in &paths {
            prop_assert!(floor.covers(p), "{} rose above the data repository", p);
        }
    }
}

#[test]
fn a_new_write_of_the_same_key_is_a_new_entry() {
    let c = config();
    let v = |version: &str| ObjectRef {
        version: Some(version.into()),
        time: None,
        ..obj("datasets/churn/a.csv")
    };
    let first = pending_entries(&c, &[v("0055AED6DCD90281E5")]).0;
    let again = pending_entries(&c, &[v("0055AED6DCD90281E5")]).0;
    let rewrite = pending_entries(&c, &[v("0055AED6DCD90281F9")]).0;
    assert_eq!(first[0].id, again[0].id, "a redelivered notification");
    assert_ne!(first[0].id, rewrite[0].id, "an overwrite is new data");
}
