//! A whole retrain deployment inside the emulator, and drivers that deliver
//! events to the handlers the way AWS would: SQS batches (from the real
//! emulated queues, acknowledging only what the handler did not fail),
//! EventBridge envelopes for domain events, and SageMaker state changes.

use crate::crash::{CrashPoints, Mode, Struck};
use crate::emulator::{Emulator, FaultProxy};
use aws_sdk_sqs::types::QueueAttributeName;
use retrain_aws::adapters::Clients;
use retrain_aws::deps::MetricSink;
use retrain_aws::handlers::{on_import, on_training, on_upload, reconcile, start_sweep};
use retrain_aws::settings::Settings;
use retrain_aws::Deps;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub const REGION: &str = "us-east-1";
pub const DATA_BUCKET: &str = "example-training-data";
pub const ARTIFACTS_BUCKET: &str = "retrain-artifacts";
pub const BUS: &str = "retrain-bus";
/// The event log, as the stack's EventLogGroup and EventLogRule make it.
pub const EVENT_LOG_GROUP: &str = "/aws/events/retrain-test";
/// The stack name the functions get from `RETRAIN_STACK_NAME`.
pub const STACK: &str = "retrain-test";
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/RetrainSageMakerTraining";

/// Which handler a delivery went to, for replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    OnUpload,
    OnImport,
    StartSweep,
    OnTraining,
    Reconcile,
}

/// Ids of what the world created.
#[derive(Debug, Clone)]
pub struct Ids {
    pub lustre: String,
    pub efs: String,
    pub vpc: String,
    pub subnet: String,
    /// The training jobs' group.
    pub security_group: String,
    /// The file systems' group: Lustre and NFS from the jobs' group.
    pub fs_security_group: String,
}

pub struct Queue {
    pub url: String,
    pub arn: String,
}

pub struct World {
    pub emulator: Emulator,
    pub clients: Clients,
    pub deps: Deps,
    pub ids: Ids,
    pub upload_queue: Queue,
    pub watch_queue: Queue,
    pub tick_queue: Queue,
    /// Deliver every event twice (at-least-once delivery).
    pub duplicate: bool,
    /// Timers come due as the test moves the emulator's clock (`clock/advance`),
    /// instead of all at once on every drain.
    pub timers_on_clock: bool,
    /// Everything delivered, in order, for replays.
    pub log: Vec<(Target, Value)>,
    /// Embedded-metric-format records the handlers emitted.
    pub metrics: Arc<Mutex<Vec<Value>>>,
    pub proxy: Option<FaultProxy>,
    /// The clients the handlers use (through the proxy when there is one).
    handler_clients: Clients,
    /// Retry failed invocations as Lambda does, instead of failing the test.
    pub tolerate_failures: bool,
    /// Items handed back by handlers (batchItemFailures or failed invocations) and delivered again.
    pub redelivered: usize,
    bus_seen: usize,
    /// Crash points on the handlers' clients, and the plan that arms them.
    pub crashes: Option<Crashes>,
    /// How often each SQS message was delivered (a DLQ takes it after maxReceiveCount), and its body.
    pub deliveries: std::collections::HashMap<String, (u32, String)>,
    /// How many of each message's deliveries went to a struck invocation.
    struck_deliveries: std::collections::HashMap<String, u32>,
}

/// Which invocation dies where: a seeded plan, and what it struck.
#[derive(Debug)]
pub struct Crashes {
    pub points: CrashPoints,
    rng: u64,
    /// Strikes planned per invocation (0: none, only `arm_matching`).
    pub per_invocation: u32,
    /// The most calls an invocation of each handler made, so strikes land inside it.
    calls_seen: std::collections::HashMap<Target, u32>,
    /// Every crash that happened: (handler, call index, mode, operation).
    pub struck: Vec<(Target, Struck)>,
    /// The AWS calls the last invocation made (attempts that got a reply).
    pub last_calls: u32,
}

impl Crashes {
    fn next(&mut self) -> u64 {
        // SplitMix64: seeded and reproducible.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Up to `per_invocation` distinct calls within what the handler usually
    /// makes: lost replies anywhere, and the invocation dies at most once, last.
    fn plan(&mut self, target: Target) -> Vec<(u32, Mode)> {
        if self.per_invocation == 0 {
            return Vec::new();
        }
        let calls = u64::from(*self.calls_seen.get(&target).unwrap_or(&12)).max(1);
        let wanted = 1 + self.next() % u64::from(self.per_invocation);
        let mut at: Vec<u32> = (0..wanted).map(|_| 1 + (self.next() % calls) as u32).collect();
        at.sort_unstable();
        at.dedup();
        let dies = self.next() % 3 != 0;
        let last = at.len().saturating_sub(1);
        at.into_iter()
            .enumerate()
            .map(|(i, call)| (call, if dies && i == last { Mode::Die } else { Mode::LostReply }))
            .collect()
    }
}

fn sdk_config(endpoint: &str, max_attempts: u32) -> aws_config::SdkConfig {
    let credentials = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "retrain-tests");
    // The product's retry mode, with short backoffs so tests stay fast.
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(std::time::Duration::from_millis(5))
        .with_max_backoff(std::time::Duration::from_millis(50));
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(credentials))
        .retry_config(retry)
        .build()
}

/// How uploads reach the upload queue: template.yaml's `UploadSource`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UploadRoute {
    /// A bucket notification sends `s3:ObjectCreated:*` to the queue.
    #[default]
    Notification,
    /// The bucket's EventBridge notifications are on, and a rule on the
    /// default bus sends `Object Created` events to the queue.
    EventBridge,
}

/// The rule on the default bus that feeds the upload queue (EventBridge route).
pub const UPLOAD_RULE: &str = "retrain-uploads";

/// The upload rule's pattern, as template.yaml's `UploadRule` has it without a key prefix.
pub fn upload_rule_pattern() -> Value {
    json!({
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": { "bucket": { "name": [DATA_BUCKET] } },
    })
}

/// How a world is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// How uploads reach the upload queue.
    pub upload_route: UploadRoute,
    /// Put a fault-injecting proxy (seed, rate) between the handlers and the emulator.
    pub faults: Option<(u64, f64)>,
    /// Strike up to N seeded calls of every invocation (seed, N); N = 0 arms nothing on its own.
    pub crashes: Option<(u64, u32)>,
    /// Job-record keys per page of a sweep's end (default: the functions' own).
    pub finish_page_keys: Option<i32>,
}

/// The test configuration: an FSx for Lustre pipeline (3 × 2 grid, two
/// lanes, one retry; mount name left to DescribeFileSystems) and a
/// scheduled EFS pipeline.
pub fn config_yaml(ids: &Ids) -> String {
    format!(
        r#"
pipelines:
  - name: churn
    trigger: {{ bucket: {DATA_BUCKET}, prefixes: ["datasets/churn/"], suffix: ".csv" }}
    file_system:
      type: fsx_lustre
      id: {lustre}
      data_repository_path: s3://{DATA_BUCKET}/
    vpc: {{ subnets: [{subnet}], security_groups: [{sg}] }}
    training:
      role_arn: {ROLE_ARN}
      image: 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1
      instance_type: ml.m5.xlarge
      output_path: s3://{ARTIFACTS_BUCKET}/models/churn/
      channels:
        - {{ name: train, directory: /datasets/churn/train, content_type: text/csv }}
        - {{ name: validation, directory: /datasets/churn/validation, content_type: text/csv }}
      hyperparameters: {{ objective: "binary:logistic", num_round: 50 }}
      objective: {{ metric: "validation:auc", direction: maximize }}
      keep_alive_seconds: 600
    sweep:
      grid: {{ eta: [0.1, 0.3, 0.5], max_depth: [4, 6] }}
      max_parallel: 2
      max_retries: 1
    import: {{ poll_interval_seconds: 1, max_wait_seconds: 3600, max_attempts: 2 }}
  - name: fraud-efs
    trigger: {{ bucket: {DATA_BUCKET}, prefixes: ["home/alice/fraud/"] }}
    file_system: {{ type: efs, id: {efs} }}
    vpc: {{ subnets: [{subnet}], security_groups: [{sg}] }}
    training:
      role_arn: {ROLE_ARN}
      image: 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1
      instance_type: ml.m5.large
      output_path: s3://{ARTIFACTS_BUCKET}/models/fraud/
      channels: [{{ name: train, directory: /home/alice/fraud/train }}]
      objective: {{ metric: "validation:logloss", direction: minimize }}
    sweep:
      variants: [{{ max_depth: 3 }}, {{ max_depth: 5 }}]
    schedule: rate(1 day)
"#,
        lustre = ids.lustre,
        efs = ids.efs,
        subnet = ids.subnet,
        sg = ids.security_group,
    )
}

impl World {
    /// Starts the emulator and creates the buckets, queues, bus, VPC and file systems.
    pub async fn start() -> World {
        World::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> World {
        let emulator = Emulator::start();
        let clients = Clients::new(&sdk_config(&emulator.endpoint, 5));
        for bucket in [DATA_BUCKET, ARTIFACTS_BUCKET] {
            clients.s3.create_bucket().bucket(bucket).send().await.expect("create bucket");
        }
        clients.events.create_event_bus().name(BUS).send().await.expect("create bus");
        event_log(&emulator.endpoint, &clients).await;
        let upload_queue = queue(&clients, "retrain-uploads").await;
        let watch_queue = queue(&clients, "retrain-watch").await;
        let tick_queue = queue(&clients, "retrain-ticks").await;
        connect_uploads(&clients, options.upload_route, &upload_queue).await;
        let ids = network_and_file_systems(&emulator.endpoint).await;
        let config = retrain_core::config::parse(&config_yaml(&ids)).unwrap_or_else(|e| panic!("test config: {e}"));
        let settings = Settings {
            config_location: "inline".into(),
            artifacts_bucket: ARTIFACTS_BUCKET.into(),
            event_bus: BUS.into(),
            watch_queue_url: watch_queue.url.clone(),
            tick_queue_url: tick_queue.url.clone(),
            schedule_expression: Some("rate(1 day)".into()),
            stack_name: Some(STACK.into()),
            finish_page_keys: options.finish_page_keys.unwrap_or(retrain_core::sweep_records::FINISH_PAGE_KEYS),
        };
        // The handlers' own clients go through the fault proxy when there is one;
        // the harness drives and inspects the emulator directly.
        let crashes = options.crashes.map(|(seed, per_invocation)| Crashes {
            points: CrashPoints::default(),
            rng: seed,
            per_invocation,
            calls_seen: std::collections::HashMap::new(),
            struck: Vec::new(),
            last_calls: 0,
        });
        let (proxy, handler_clients) = match (options.faults, &crashes) {
            (Some((seed, rate)), _) => {
                let proxy = FaultProxy::start(&emulator.endpoint, seed, rate);
                let clients = Clients::new(&sdk_config(&proxy.endpoint, 2));
                (Some(proxy), clients)
            }
            (None, Some(c)) => (None, crate::crash::clients(&sdk_config(&emulator.endpoint, 5), &c.points)),
            (None, None) => (None, clients.clone()),
        };
        let mut deps = Deps::new(config, settings, handler_clients.clone());
        let metrics = Arc::new(Mutex::new(Vec::new()));
        deps.metrics = MetricSink::Captured(metrics.clone());
        World {
            proxy,
            handler_clients,
            tolerate_failures: options.faults.is_some() || crashes.is_some(),
            redelivered: 0,
            crashes,
            deliveries: std::collections::HashMap::new(),
            struck_deliveries: std::collections::HashMap::new(),
            metrics,
            emulator,
            clients,
            deps,
            ids,
            upload_queue,
            watch_queue,
            tick_queue,
            duplicate: false,
            timers_on_clock: false,
            log: Vec::new(),
            bus_seen: 0,
        }
    }

    /// Runs a boto3 snippet (with `client(name)`) against the emulator; its last stdout line is JSON.
    pub fn boto3(&self, body: &str) -> Value {
        boto3_setup(&self.emulator.endpoint, body)
    }

    /// Starts a training job outside retrain (another team's) on `instance_type`:
    /// it stays InProgress and uses that much of the type's quota.
    pub fn occupy(&self, name: &str, instance_type: &str, count: u32) {
        self.boto3(&format!(
            "client('sagemaker').create_training_job(TrainingJobName='{name}', RoleArn='{ROLE_ARN}', AlgorithmSpecification={{'TrainingImage': 'img', 'TrainingInputMode': 'File'}}, OutputDataConfig={{'S3OutputPath': 's3://retrain-artifacts/other/'}}, ResourceConfig={{'InstanceType': '{instance_type}', 'InstanceCount': {count}, 'VolumeSizeInGB': 30}}, StoppingCondition={{'MaxRuntimeInSeconds': 3600}})\nprint('{{}}')"
        ));
    }

    /// Changes the configuration the handlers run with (a new cold start).
    pub fn reconfigure(&mut self, change: impl FnOnce(&mut retrain_core::Config)) {
        let mut config = self.deps.config.clone();
        change(&mut config);
        self.deps = Deps::new(config, self.deps.settings.clone(), self.handler_clients.clone());
        self.deps.metrics = MetricSink::Captured(self.metrics.clone());
    }

    /// Uploads objects to the data bucket (S3 notifies the upload queue, directly or through EventBridge).
    pub async fn upload(&self, keys: &[String]) {
        for key in keys {
            self.clients
                .s3
                .put_object()
                .bucket(DATA_BUCKET)
                .key(key)
                .body(b"f1,f2\n1,2\n".to_vec().into())
                .send()
                .await
                .expect("put object");
        }
    }

    /// Hands one payload to a handler (twice when `duplicate`), logging it for replays.
    pub async fn deliver(&mut self, target: Target, payload: Value) -> Value {
        self.log.push((target, payload.clone()));
        let first = self.invoke(target, &payload).await;
        if self.duplicate {
            self.invoke(target, &payload).await;
        }
        first
    }

    async fn invoke(&mut self, target: Target, payload: &Value) -> Value {
        // A failed or crashed invocation is retried, as Lambda retries
        // asynchronous invocations; after two struck attempts, one runs clean
        // (a delivery always gets through before its retries run out).
        let mut struck = 0;
        for _ in 0..20 {
            let (result, hit) = self.invoke_once(target, payload, struck < 2).await;
            struck += u32::from(hit);
            match result {
                Some(Ok(v)) => return v,
                Some(Err(e)) if self.tolerate_failures && e.is_retryable() => self.redelivered += 1,
                Some(Err(e)) => panic!("{target:?} failed: {e}"),
                None => self.redelivered += 1,
            }
        }
        panic!("{target:?} kept failing");
    }

    /// One invocation, struck at planned calls when `may_crash`. The result
    /// is `None` when it died (nothing it did after that call happened); the
    /// flag says whether any call was struck.
    async fn invoke_once(&mut self, target: Target, payload: &Value, may_crash: bool) -> (Option<Result<Value, retrain_aws::Error>>, bool) {
        if let Some(c) = self.crashes.as_mut() {
            let at = if may_crash { c.plan(target) } else { Vec::new() };
            c.points.arm(at);
        }
        // Each handler's future boxed: in a debug build they are large, and
        // the test thread's stack (2 MiB) holds every frame of the test too.
        let result = match target {
            Target::OnUpload => Box::pin(on_upload::handle(&self.deps, payload)).await,
            Target::OnImport => Box::pin(on_import::handle(&self.deps, payload)).await,
            Target::StartSweep => Box::pin(start_sweep::handle(&self.deps, payload, "test-request")).await,
            Target::OnTraining => Box::pin(on_training::handle(&self.deps, payload)).await,
            Target::Reconcile => Box::pin(reconcile::handle(&self.deps, payload)).await,
        };
        let Some(c) = self.crashes.as_mut() else {
            return (Some(result), false);
        };
        let died = c.points.dead();
        let (struck, calls) = c.points.disarm();
        c.last_calls = calls;
        if !died {
            let seen = c.calls_seen.entry(target).or_insert(0);
            *seen = (*seen).max(calls);
        }
        let hit = !struck.is_empty();
        c.struck.extend(struck.into_iter().map(|s| (target, s)));
        (if died { None } else { Some(result) }, hit)
    }

    /// Runs the reconciler once with no crash point (a clean scheduled pass).
    pub async fn reconcile_cleanly(&mut self) -> Value {
        let payload = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
        match self.invoke_once(Target::Reconcile, &payload, false).await {
            (Some(Ok(v)), _) => v,
            (other, _) => panic!("a clean reconciler pass failed: {other:?}"),
        }
    }

    /// Delivers everything waiting in a queue as one Lambda SQS batch and
    /// deletes what the handler did not report as failed. Returns the response.
    pub async fn drain(&mut self, which: Target) -> Option<Value> {
        let queue = match which {
            Target::OnUpload => &self.upload_queue,
            Target::OnImport => &self.watch_queue,
            Target::OnTraining => &self.tick_queue,
            Target::StartSweep | Target::Reconcile => panic!("{which:?} has no queue"),
        };
        // Timers are delayed messages: the test's clock jumps to their delivery.
        if !self.timers_on_clock {
            self.emulator.post("sqs/release-delayed", json!({}));
        }
        let (url, arn) = (queue.url.clone(), queue.arn.clone());
        let mut messages = Vec::new();
        loop {
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive");
            let batch = out.messages().to_vec();
            if batch.is_empty() {
                break;
            }
            messages.extend(batch);
        }
        if messages.is_empty() {
            return None;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                    "attributes": delivery_attributes(m),
                    "messageAttributes": {}, "md5OfBody": m.md5_of_body(), "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": REGION
                })
            })
            .collect();
        let mut most_struck = 0;
        for m in &messages {
            let id = m.message_id().unwrap_or_default().to_owned();
            most_struck = most_struck.max(*self.struck_deliveries.get(&id).unwrap_or(&0));
            let seen = self
                .deliveries
                .entry(id)
                .or_insert_with(|| (0, m.body().unwrap_or_default().to_owned()));
            seen.0 += 1;
        }
        let payload = json!({ "Records": records });
        self.log.push((which, payload.clone()));
        // After two struck deliveries of a message, its next one runs clean,
        // so no message nears maxReceiveCount through the explorer alone.
        let (result, hit) = self.invoke_once(which, &payload, most_struck < 2).await;
        if hit {
            for m in &messages {
                *self
                    .struck_deliveries
                    .entry(m.message_id().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
        }
        let all_back =
            || json!({"batchItemFailures": messages.iter().map(|m| json!({"itemIdentifier": m.message_id()})).collect::<Vec<_>>()});
        let response = match result {
            Some(Ok(v)) => v,
            Some(Err(e)) if self.tolerate_failures && e.is_retryable() => all_back(),
            Some(Err(e)) => panic!("{which:?} failed: {e}"),
            // A dead invocation acknowledges nothing: every message comes back.
            None => all_back(),
        };
        if self.duplicate {
            self.invoke(which, &payload).await;
        }
        let failed: Vec<&str> = response["batchItemFailures"]
            .as_array()
            .map(|f| f.iter().filter_map(|i| i["itemIdentifier"].as_str()).collect())
            .unwrap_or_default();
        for m in &messages {
            let handle = m.receipt_handle().unwrap_or_default();
            if failed.contains(&m.message_id().unwrap_or_default()) {
                // Back to the queue at once (the visibility timeout, shortened for the test).
                self.redelivered += 1;
                self.clients
                    .sqs
                    .change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .expect("visibility");
            } else {
                self.clients
                    .sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
        Some(response)
    }

    /// Delivers the bus's new retrain events that rules route to start-sweep
    /// (`DataImportCompleted`), as EventBridge would.
    pub async fn route_bus(&mut self) -> usize {
        let entries = self.emulator.events(BUS);
        let fresh: Vec<Value> = entries[self.bus_seen..].to_vec();
        self.bus_seen = entries.len();
        let mut routed = 0;
        for (i, e) in fresh.iter().enumerate() {
            if e["DetailType"] != "DataImportCompleted" {
                continue;
            }
            let detail: Value = serde_json::from_str(e["Detail"].as_str().unwrap_or("{}")).expect("detail is JSON");
            let envelope = json!({
                "version": "0", "id": format!("evt-{}-{i}", self.bus_seen), "detail-type": e["DetailType"], "source": e["Source"],
                "account": "123456789012", "time": "2026-11-25T12:00:00Z", "region": REGION, "resources": [], "detail": detail
            });
            self.deliver(Target::StartSweep, envelope).await;
            routed += 1;
        }
        routed
    }

    /// Re-delivers every logged event in order, as SQS would deliver a
    /// message again: received once more than before.
    pub async fn replay(&mut self) {
        let log = self.log.clone();
        for (target, mut payload) in log {
            for record in payload["Records"].as_array_mut().into_iter().flatten() {
                let attributes = &mut record["attributes"];
                if let Some(count) = attributes["ApproximateReceiveCount"].as_str().and_then(|c| c.parse::<u32>().ok()) {
                    attributes["ApproximateReceiveCount"] = json!((count + 1).to_string());
                }
            }
            self.invoke(target, &payload).await;
        }
    }

    /// Whether every key is covered by a path of a succeeded import.
    pub fn every_key_imported(&self, keys: &[String]) -> bool {
        let tasks = self.emulator.tasks()["tasks"].as_array().cloned().unwrap_or_default();
        keys.iter().all(|k| {
            let uri = format!("s3://{DATA_BUCKET}/{k}");
            tasks.iter().filter(|t| t["Lifecycle"] == "SUCCEEDED").any(|t| {
                t["Paths"]
                    .as_array()
                    .is_some_and(|p| p.iter().filter_map(Value::as_str).any(|p| uri.starts_with(p)))
            })
        })
    }

    /// Every key of the artifacts bucket under `prefix`, over all pages.
    pub async fn list_all(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut pages = self
            .clients
            .s3
            .list_objects_v2()
            .bucket(ARTIFACTS_BUCKET)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            keys.extend(page.expect("list").contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        keys
    }

    /// Keys of the artifacts bucket under `prefix` (one page: tests keep few).
    pub async fn artifact_keys(&self, prefix: &str) -> Vec<String> {
        let out = self
            .clients
            .s3
            .list_objects_v2()
            .bucket(ARTIFACTS_BUCKET)
            .prefix(prefix)
            .send()
            .await
            .expect("list");
        out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    }

    /// Domain events published so far, one per `event_id` (publishing is at
    /// least once: a retry may repeat an event, always under the same id).
    pub fn published_once(&self, detail_type: &str) -> Vec<Value> {
        let mut seen = std::collections::BTreeSet::new();
        self.published(detail_type)
            .into_iter()
            .filter(|d| seen.insert(d["event_id"].as_str().unwrap_or_default().to_owned()))
            .collect()
    }

    /// Domain events published so far, by detail-type.
    pub fn published(&self, detail_type: &str) -> Vec<Value> {
        self.emulator
            .events(BUS)
            .into_iter()
            .filter(|e| e["DetailType"] == detail_type)
            .map(|e| serde_json::from_str(e["Detail"].as_str().unwrap_or("{}")).unwrap_or_default())
            .collect()
    }
}

/// The one-time bucket step of docs/deploying.md for the route, and the rule
/// and queue policy that template.yaml creates for the EventBridge route.
async fn connect_uploads(clients: &Clients, route: UploadRoute, queue: &Queue) {
    use aws_sdk_s3::types::{EventBridgeConfiguration, NotificationConfiguration, QueueConfiguration};
    let configuration = match route {
        UploadRoute::Notification => NotificationConfiguration::builder()
            .queue_configurations(
                QueueConfiguration::builder()
                    .queue_arn(&queue.arn)
                    .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
                    .build()
                    .expect("queue configuration"),
            )
            .build(),
        UploadRoute::EventBridge => NotificationConfiguration::builder()
            .event_bridge_configuration(EventBridgeConfiguration::builder().build())
            .build(),
    };
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(DATA_BUCKET)
        .notification_configuration(configuration)
        .send()
        .await
        .expect("bucket notification");
    if route == UploadRoute::Notification {
        return;
    }
    let rule = clients
        .events
        .put_rule()
        .name(UPLOAD_RULE)
        .event_pattern(upload_rule_pattern().to_string())
        .send()
        .await
        .expect("upload rule")
        .rule_arn()
        .map(str::to_owned)
        .expect("rule arn");
    clients
        .events
        .put_targets()
        .rule(UPLOAD_RULE)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("UploadQueue")
                .arn(&queue.arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("upload rule target");
    // The emulator, like EventBridge, delivers only what the queue policy allows the rule to send.
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "events.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue.arn,
            "Condition": { "ArnEquals": { "aws:SourceArn": rule } },
        }],
    });
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&queue.url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .expect("upload queue policy");
}

async fn queue(clients: &Clients, name: &str) -> Queue {
    let url = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue arn");
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    Queue { url, arn }
}

/// A VPC with one subnet, the jobs' security group and the file systems'
/// group (Lustre ports and NFS open to the jobs' group), an FSx for Lustre
/// file system linked to the data bucket, and an EFS file system with a
/// mount target in the subnet: a setup that passes preflight.
async fn network_and_file_systems(endpoint: &str) -> Ids {
    // The product only reads EC2 and EFS; the harness creates them with boto3.
    let ids = boto3_setup(
        endpoint,
        r#"
ec2 = client('ec2'); fsx = client('fsx'); efs = client('efs')
vpc = ec2.create_vpc(CidrBlock='10.0.0.0/16')['Vpc']['VpcId']
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.1.0/24', AvailabilityZone='us-east-1a')['Subnet']['SubnetId']
sg = ec2.create_security_group(GroupName='retrain-training', Description='training jobs', VpcId=vpc)['GroupId']
fs_sg = ec2.create_security_group(GroupName='retrain-file-systems', Description='file systems', VpcId=vpc)['GroupId']
ec2.authorize_security_group_ingress(GroupId=fs_sg, IpPermissions=[
    {'IpProtocol': 'tcp', 'FromPort': 988, 'ToPort': 988, 'UserIdGroupPairs': [{'GroupId': sg}, {'GroupId': fs_sg}]},
    {'IpProtocol': 'tcp', 'FromPort': 1018, 'ToPort': 1023, 'UserIdGroupPairs': [{'GroupId': sg}, {'GroupId': fs_sg}]},
    {'IpProtocol': 'tcp', 'FromPort': 2049, 'ToPort': 2049, 'UserIdGroupPairs': [{'GroupId': sg}]}])
lustre = fsx.create_file_system(FileSystemType='LUSTRE', StorageCapacity=1200, SubnetIds=[subnet], SecurityGroupIds=[fs_sg],
    LustreConfiguration={'ImportPath': 's3://example-training-data/', 'DeploymentType': 'SCRATCH_2'})['FileSystem']['FileSystemId']
e = efs.create_file_system(CreationToken='retrain-efs')['FileSystemId']
efs.create_mount_target(FileSystemId=e, SubnetId=subnet, SecurityGroups=[fs_sg])
print(json.dumps({'lustre': lustre, 'efs': e, 'vpc': vpc, 'subnet': subnet, 'sg': sg, 'fs_sg': fs_sg}))
"#,
    );
    let id = |k: &str| ids[k].as_str().unwrap_or_default().to_owned();
    Ids {
        lustre: id("lustre"),
        efs: id("efs"),
        vpc: id("vpc"),
        subnet: id("subnet"),
        security_group: id("sg"),
        fs_security_group: id("fs_sg"),
    }
}

/// Runs a boto3 snippet against the emulator and parses its last stdout line as JSON.
pub fn boto3_setup(endpoint: &str, body: &str) -> Value {
    let script = format!(
        "import boto3, json\ndef client(name):\n    return boto3.client(name, endpoint_url={endpoint:?}, region_name={REGION:?}, aws_access_key_id='testing', aws_secret_access_key='testing')\n{body}"
    );
    let out = std::process::Command::new(crate::emulator::python())
        .args(["-c", &script])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "setup script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("setup prints JSON")
}

/// A received message's attributes as the SQS event source hands them to Lambda.
fn delivery_attributes(m: &aws_sdk_sqs::types::Message) -> Value {
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    let attributes = m.attributes();
    let get = |name: A, default: &str| attributes.and_then(|a| a.get(&name)).cloned().unwrap_or_else(|| default.to_owned());
    json!({
        "ApproximateReceiveCount": get(A::ApproximateReceiveCount, "1"),
        "SentTimestamp": get(A::SentTimestamp, "1795618800000"),
        "SenderId": get(A::SenderId, "AIDAEXAMPLE"),
        "ApproximateFirstReceiveTimestamp": get(A::ApproximateFirstReceiveTimestamp, "1795618800001"),
    })
}

/// Every domain event to the event log, as template.yaml's EventLogRule sends it.
async fn event_log(endpoint: &str, clients: &Clients) {
    aws_sdk_cloudwatchlogs::Client::new(&sdk_config(endpoint, 5))
        .create_log_group()
        .log_group_name(EVENT_LOG_GROUP)
        .send()
        .await
        .expect("event log group");
    clients
        .events
        .put_rule()
        .name("event-log")
        .event_bus_name(BUS)
        .event_pattern(json!({"source": [retrain_core::events::EVENT_SOURCE]}).to_string())
        .send()
        .await
        .expect("event log rule");
    clients
        .events
        .put_targets()
        .rule("event-log")
        .event_bus_name(BUS)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("event-log")
                .arn(format!("arn:aws:logs:{REGION}:123456789012:log-group:{EVENT_LOG_GROUP}"))
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("event log target");
}
