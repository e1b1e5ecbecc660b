//! Everything a handler needs, built once per cold start.

use crate::adapters::{
    bus::Bus, capacity::Capacity, fsx::Fsx, network::Network, sagemaker::SageMaker, store::Store, timers::Timers, Clients,
};
use crate::error::Error;
use crate::settings::Settings;
use retrain_core::config::{FileSystemKind, Instances, Pipeline};
use retrain_core::events::DomainEvent;
use retrain_core::preflight::{self, Finding};
use retrain_core::sweep::{manifest_key, SweepManifest};
use retrain_core::Config;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

pub struct Deps {
    pub config: Config,
    pub settings: Settings,
    pub store: Store,
    pub fsx: Fsx,
    pub sagemaker: SageMaker,
    pub bus: Bus,
    pub timers: Timers,
    pub network: Network,
    pub capacity: Capacity,
    pub metrics: MetricSink,
    /// Preflight results that passed, per pipeline, during this cold start.
    preflight_passed: Mutex<HashMap<String, Preflight>>,
    /// Lustre mount names looked up during this cold start.
    mount_names: Mutex<HashMap<String, String>>,
    /// Sweep manifests read during this cold start: a manifest is written
    /// once and never changed, so a warm function reads it once per sweep.
    manifests: Mutex<HashMap<String, Arc<SweepManifest>>>,
}

/// What preflight found for a pipeline, and the instance types its sweep may use.
#[derive(Debug, Clone, PartialEq)]
pub struct Preflight {
    pub findings: Vec<Finding>,
    pub instances: Vec<Instances>,
}

impl Preflight {
    /// Describes a pipeline's network, file system, quotas and training plan,
    /// and checks them: what start-sweep and `retrain validate --live` both run.
    pub async fn run(network: &Network, capacity: &Capacity, pipeline: &Pipeline) -> Result<Preflight, Error> {
        let mut findings = preflight::check(pipeline, &network.facts(pipeline).await?);
        let capacity = preflight::capacity::check(pipeline, &capacity.facts(pipeline).await?);
        findings.extend(capacity.findings);
        Ok(Preflight {
            findings,
            instances: capacity.instances,
        })
    }

    /// One line per failed check: what blocks the sweep.
    pub fn problems(&self) -> Vec<String> {
        self.findings.iter().filter(|f| !f.ok).map(Finding::problem).collect()
    }

    /// One line per warning (an instance type skipped, a quota unread).
    pub fn warnings(&self) -> Vec<String> {
        self.findings.iter().filter(|f| f.ok && f.warning).map(Finding::problem).collect()
    }
}

/// Manifests kept per cold start; more sweeps than this at once just read again.
const MANIFESTS_KEPT: usize = 32;

/// Where embedded-metric-format records go.
#[derive(Debug, Clone)]
pub enum MetricSink {
    /// The function's stdout: CloudWatch Logs extracts EMF records from it, one JSON object per line.
    Stdout,
    /// Kept in memory (tests).
    Captured(Arc<std::sync::Mutex<Vec<serde_json::Value>>>),
}

impl MetricSink {
    pub fn emit(&self, record: &serde_json::Value) {
        match self {
            MetricSink::Stdout => println!("{record}"),
            MetricSink::Captured(records) => records.lock().unwrap_or_else(|p| p.into_inner()).push(record.clone()),
        }
    }
}

impl Deps {
    /// Publishes `event` once per scope (see [`Bus::publish_once`]) and
    /// counts it on its first publication.
    pub async fn publish_once(&self, scope: &str, event: &DomainEvent) -> Result<bool, Error> {
        let first = self.bus.publish_once(&self.store, scope, event).await?;
        if first {
            self.count(event);
        }
        Ok(first)
    }

    /// Publishes `events` together, each once per scope, and counts the first publications.
    pub async fn publish_new(&self, scope: &str, events: &[DomainEvent]) -> Result<(), Error> {
        for event in self.bus.publish_new(&self.store, scope, events).await? {
            self.count(event);
        }
        Ok(())
    }

    /// Publishes an event that has no once-marker (its id is its content's), and counts it.
    pub async fn publish(&self, event: &DomainEvent, event_id: &str) -> Result<(), Error> {
        self.bus.publish(event, event_id).await?;
        self.count(event);
        Ok(())
    }

    fn count(&self, event: &DomainEvent) {
        if let Some(record) = retrain_core::telemetry::event_emf(event, crate::handlers::now_epoch() * 1000) {
            self.metrics.emit(&record);
        }
    }

    pub fn new(config: Config, settings: Settings, clients: Clients) -> Deps {
        Deps {
            store: Store::new(clients.s3, settings.artifacts_bucket.clone()),
            network: Network::new(clients.fsx.clone(), clients.efs, clients.ec2),
            capacity: Capacity::new(clients.servicequotas, clients.sagemaker.clone()),
            preflight_passed: Mutex::new(HashMap::new()),
            metrics: MetricSink::Stdout,
            fsx: Fsx::new(clients.fsx),
            sagemaker: SageMaker::new(clients.sagemaker),
            bus: Bus::new(clients.events, settings.event_bus.clone()),
            timers: Timers::new(clients.sqs),
            mount_names: Mutex::new(HashMap::new()),
            manifests: Mutex::new(HashMap::new()),
            config,
            settings,
        }
    }

    /// Settings from the environment, clients from the default chain, and the
    /// config from `RETRAIN_CONFIG`, validated: a bad config stops the cold start
    /// with every error listed.
    pub async fn from_env() -> Result<Deps, Error> {
        let settings = Settings::from_env()?;
        let clients = Clients::from_env().await;
        let text = crate::adapters::store::read_config_text(&clients.s3, &settings.config_location).await?;
        let config =
            retrain_core::config::parse(&text).map_err(|e| Error::Setup(format!("RETRAIN_CONFIG={}: {e}", settings.config_location)))?;
        Ok(Deps::new(config, settings, clients))
    }

    /// A sweep's manifest; `None` if it does not exist (yet).
    pub async fn manifest(&self, pipeline: &str, sweep_id: &str) -> Result<Option<Arc<SweepManifest>>, Error> {
        let key = manifest_key(pipeline, sweep_id);
        if let Some(m) = self.manifests.lock().await.get(&key) {
            return Ok(Some(m.clone()));
        }
        let Some(manifest) = self.store.get::<SweepManifest>("sweep manifest", &key).await? else {
            return Ok(None);
        };
        let manifest = Arc::new(manifest);
        let mut kept = self.manifests.lock().await;
        if kept.len() >= MANIFESTS_KEPT {
            kept.clear();
        }
        kept.insert(key, manifest.clone());
        Ok(Some(manifest))
    }

    /// Preflight of a pipeline: its network and file system, then which of
    /// its instance types the account's quotas and training plan can run.
    /// Passing results are kept for the cold start, so a sweep does not
    /// describe the VPC for every launch; failing ones are described afresh,
    /// so a fix is seen at once.
    pub async fn preflight(&self, pipeline: &Pipeline) -> Result<Preflight, Error> {
        if let Some(found) = self.preflight_passed.lock().await.get(&pipeline.name) {
            return Ok(found.clone());
        }
        let result = Preflight::run(&self.network, &self.capacity, pipeline).await?;
        if result.problems().is_empty() {
            self.preflight_passed.lock().await.insert(pipeline.name.clone(), result.clone());
        }
        Ok(result)
    }

    /// The Lustre mount name of a pipeline's file system: from the config, else FSx (cached).
    pub async fn mount_name(&self, pipeline: &Pipeline) -> Result<Option<String>, Error> {
        if pipeline.file_system.kind != FileSystemKind::FsxLustre {
            return Ok(None);
        }
        if let Some(m) = &pipeline.file_system.mount_name {
            return Ok(Some(m.clone()));
        }
        let id = &pipeline.file_system.id;
        if let Some(m) = self.mount_names.lock().await.get(id) {
            return Ok(Some(m.clone()));
        }
        let found = self.fsx.mount_name(id).await?;
        if let Some(m) = &found {
            self.mount_names.lock().await.insert(id.clone(), m.clone());
        }
        Ok(found)
    }
}
