//! From sweep to the Model Registry: each completed sweep of the EFS
//! pipeline (two variants, logloss minimised) registers its best model once,
//! gated against the group's Approved package.

use retrain_core::config::{Approval, Promotion};
use retrain_tests::world::{Target, World};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const GROUP: &str = "fraud";

fn promote(world: &mut World, approval: Approval, min_improvement: f64) {
    world.reconfigure(|config| {
        for p in config.pipelines.iter_mut().filter(|p| p.name == "fraud-efs") {
            p.promotion = Some(Promotion {
                model_package_group: GROUP.to_owned(),
                description: None,
                tags: BTreeMap::from([("team".to_owned(), "risk".to_owned())]),
                min_improvement,
                improvement: Default::default(),
                approval,
            });
        }
    });
}

/// A scheduled sweep at `time` whose two variants end with these loglosses.
async fn sweep(world: &mut World, time: &str, losses: [f64; 2]) {
    let mut scheduled: Value = serde_json::from_str(include_str!("../../events/scheduled-event.json")).expect("fixture");
    scheduled["time"] = json!(time);
    scheduled["id"] = json!(format!("schedule-{time}"));
    world.deliver(Target::StartSweep, scheduled).await;
    for loss in losses {
        let jobs = world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default();
        let running = jobs.iter().find(|j| j["status"] == "InProgress").expect("a running job");
        let name = running["name"].as_str().unwrap_or_default().to_owned();
        let event = world.emulator.complete_job(&name, json!({"validation:logloss": loss}));
        world.deliver(Target::OnTraining, event).await;
    }
}

async fn packages(world: &World) -> Vec<(String, String, Option<String>)> {
    let listed = world
        .clients
        .sagemaker
        .list_model_packages()
        .model_package_group_name(GROUP)
        .sort_by(aws_sdk_sagemaker::types::ModelPackageSortBy::CreationTime)
        .send()
        .await
        .expect("list packages");
    let mut out = Vec::new();
    for p in listed.model_package_summary_list() {
        let arn = p.model_package_arn().unwrap_or_default().to_owned();
        let d = world
            .clients
            .sagemaker
            .describe_model_package()
            .model_package_name(&arn)
            .send()
            .await
            .expect("describe package");
        let status = d.model_approval_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
        out.push((arn, status, d.approval_description().map(str::to_owned)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_model_is_approved_a_worse_one_rejected_and_a_better_one_approved() {
    let mut world = World::start().await;
    promote(&mut world, Approval::Auto, 0.01);
    sweep(&mut world, "2026-11-25T01:00:00Z", [0.40, 0.30]).await;
    let first = packages(&world).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, "Approved", "no Approved package yet: the first passes");
    let described = world
        .clients
        .sagemaker
        .describe_model_package()
        .model_package_name(&first[0].0)
        .send()
        .await
        .expect("describe");
    let metadata = described.customer_metadata_properties().cloned().unwrap_or_default();
    assert_eq!(metadata.get("retrain:metric-value").map(String::as_str), Some("0.3"));
    // The package names the data: the scheduled sweep's version and time.
    let started = world.published("SweepStarted");
    let version = started[0]["data_version"]["version"].as_str().unwrap_or_default().to_owned();
    assert!(version.starts_with("dv-"), "{:#}", started[0]);
    assert_eq!(metadata.get("retrain:data-version"), Some(&version));
    assert_eq!(
        metadata.get("retrain:data-as-of").map(String::as_str),
        Some("2026-11-25T01:00:00Z"),
        "a scheduled sweep's data is as of its schedule"
    );
    let container = &described.inference_specification().expect("inference spec").containers()[0];
    assert!(container.model_data_url().unwrap_or_default().ends_with("/output/model.tar.gz"));
    let group = world
        .clients
        .sagemaker
        .describe_model_package_group()
        .model_package_group_name(GROUP)
        .send()
        .await
        .expect("group created");
    assert!(group.model_package_group_arn().is_some());

    // Not better by 0.01: rejected, with the reason.
    sweep(&mut world, "2026-11-26T01:00:00Z", [0.295, 0.5]).await;
    let second = packages(&world).await;
    assert_eq!(second.len(), 2);
    assert_eq!(second[1].1, "Rejected");
    assert!(
        second[1].2.as_deref().unwrap_or_default().contains("does not beat production 0.3"),
        "{:?}",
        second[1].2
    );

    // Better: approved, compared with the first.
    sweep(&mut world, "2026-11-27T01:00:00Z", [0.2, 0.5]).await;
    let third = packages(&world).await;
    assert_eq!(third[2].1, "Approved");
    let events = world.published("ModelRegistered");
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(events[0]["status"], "Approved");
    assert!(events[0].get("production_package_arn").is_none());
    assert_eq!(events[1]["status"], "Rejected");
    assert_eq!(events[1]["production_package_arn"], first[0].0.as_str());
    assert_eq!(events[2]["production_value"], 0.3);
    assert_eq!(events[2]["value"], 0.2);
    // Each registration names the data of its own sweep, as its start and end did.
    let (started, completed) = (world.published("SweepStarted"), world.published("SweepCompleted"));
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["data_version"], started[i]["data_version"], "sweep {i}");
        assert_eq!(event["data_version"], completed[i]["data_version"], "sweep {i}");
    }
    let versions: BTreeSet<&str> = started.iter().filter_map(|e| e["data_version"]["version"].as_str()).collect();
    assert_eq!(versions.len(), 3, "three schedules, three data versions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_approval_leaves_the_package_pending_with_the_comparison() {
    let mut world = World::start().await;
    promote(&mut world, Approval::Manual, 0.0);
    sweep(&mut world, "2026-11-25T01:00:00Z", [0.40, 0.30]).await;
    let listed = packages(&world).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1, "PendingManualApproval");
    assert!(
        listed[0].2.as_deref().unwrap_or_default().contains("no Approved package"),
        "{:?}",
        listed[0].2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_a_replay_and_the_reconciler_register_one_package_per_sweep() {
    let mut world = World::start().await;
    promote(&mut world, Approval::Auto, 0.0);
    sweep(&mut world, "2026-11-25T01:00:00Z", [0.40, 0.30]).await;
    world.replay().await;
    world.reconcile_cleanly().await;
    let listed = packages(&world).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(world.published_once("ModelRegistered").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_with_no_ranked_variant_registers_nothing() {
    let mut world = World::start().await;
    promote(&mut world, Approval::Auto, 0.0);
    let mut scheduled: Value = serde_json::from_str(include_str!("../../events/scheduled-event.json")).expect("fixture");
    scheduled["time"] = json!("2026-11-25T01:00:00Z");
    world.deliver(Target::StartSweep, scheduled).await;
    for _ in 0..2 {
        let jobs = world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default();
        let running = jobs.iter().find(|j| j["status"] == "InProgress").expect("a running job");
        let name = running["name"].as_str().unwrap_or_default().to_owned();
        let event = world.emulator.complete_job(&name, json!({}));
        world.deliver(Target::OnTraining, event).await;
    }
    assert_eq!(world.published("SweepCompleted").len(), 1);
    assert!(world.published("ModelRegistered").is_empty());
    assert!(packages(&world).await.is_empty());
}
