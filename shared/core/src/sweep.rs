//! Sweep expansion and the sweep manifest: the immutable record of what a
//! sweep trains, written once to S3 and read by every later step.

use crate::config::{AccessMode, FileSystemKind, Instances, Pipeline, Scalar};
use crate::lineage::{self, DataVersion};
use crate::names;
use crate::requests::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What started a sweep; its id derives from this so a duplicate trigger names the same sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SweepTrigger {
    /// `import`, `schedule` or `request`.
    pub kind: String,
    /// Import task id, schedule time, or request id.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One hyperparameter variant of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Stable id: `v<position in the full expansion>`.
    pub id: String,
    /// The variant's own hyperparameters (the pipeline's static ones are added at launch).
    pub hyperparameters: BTreeMap<String, String>,
}

/// The immutable record of one sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepManifest {
    pub sweep_id: String,
    pub trigger: SweepTrigger,
    /// The pipeline's configuration when the sweep started: later config edits do not change a running sweep.
    pub pipeline: Pipeline,
    /// The Lustre mount name, resolved once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_name: Option<String>,
    /// The variants in launch order; variant `i` runs in lane `i % max_parallel`.
    pub variants: Vec<Variant>,
    /// The data the sweep trains on, fixed when the manifest is written (absent in manifests written before lineage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_version: Option<DataVersion>,
    /// The instance types its jobs try, in order, fixed when the manifest is
    /// written (empty in manifests written before fallback types: the pipeline's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instances>,
    /// Preflight's warnings when the sweep started (types it skipped, quotas it could not read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Every variant of the pipeline's sweep: each grid point (keys in
/// alphabetical order, the last varying fastest), then each explicit variant.
pub fn expand(pipeline: &Pipeline) -> Vec<Variant> {
    let sweep = &pipeline.sweep;
    if let Some(search) = &sweep.search {
        // Slots only: each one's hyperparameters are suggested, and recorded, just before its launch.
        return (0..search.budget.max(1))
            .map(|i| Variant {
                id: format!("v{i}"),
                hyperparameters: BTreeMap::new(),
            })
            .collect();
    }
    let mut points: Vec<BTreeMap<String, String>> = Vec::new();
    if !sweep.grid.is_empty() {
        points.push(BTreeMap::new());
        for (name, values) in &sweep.grid {
            points = points
                .into_iter()
                .flat_map(|point| {
                    values.iter().map(move |v| {
                        let mut p = point.clone();
                        p.insert(name.clone(), v.to_hyperparameter());
                        p
                    })
                })
                .collect();
        }
    }
    points.extend(sweep.variants.iter().map(stringify));
    if points.is_empty() {
        // No grid, no variants: one job with the static hyperparameters.
        points.push(BTreeMap::new());
    }
    points
        .into_iter()
        .enumerate()
        .map(|(i, hyperparameters)| Variant {
            id: format!("v{i}"),
            hyperparameters,
        })
        .collect()
}

fn stringify(map: &BTreeMap<String, Scalar>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.to_hyperparameter())).collect()
}

/// A variant subset named in a start-sweep request that the sweep does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pipeline {pipeline:?} has no variant(s) {missing:?}; its variants are v0..v{last}")]
pub struct UnknownVariants {
    pub pipeline: String,
    pub missing: Vec<String>,
    pub last: usize,
}

impl SweepManifest {
    /// The manifest of a new sweep of `pipeline`, optionally limited to some variant ids.
    pub fn new(
        pipeline: &Pipeline,
        trigger: SweepTrigger,
        mount_name: Option<String>,
        only: Option<&[String]>,
    ) -> Result<SweepManifest, UnknownVariants> {
        let all = expand(pipeline);
        let variants = match only {
            None => all,
            Some(ids) => {
                let missing: Vec<String> = ids.iter().filter(|id| !all.iter().any(|v| &v.id == *id)).cloned().collect();
                if !missing.is_empty() {
                    return Err(UnknownVariants {
                        pipeline: pipeline.name.clone(),
                        missing,
                        last: all.len().saturating_sub(1),
                    });
                }
                all.into_iter().filter(|v| ids.contains(&v.id)).collect()
            }
        };
        let sweep_id = names::sweep_id(&pipeline.name, &trigger.kind, &trigger.id);
        let mount_name = mount_name.or_else(|| pipeline.file_system.mount_name.clone());
        Ok(SweepManifest {
            sweep_id,
            trigger,
            pipeline: pipeline.clone(),
            mount_name,
            variants,
            data_version: None,
            instances: pipeline.training.instances(),
            warnings: Vec::new(),
        })
    }

    /// The sweep's data version: the recorded one, else what its trigger says.
    pub fn data_version(&self) -> DataVersion {
        self.data_version
            .clone()
            .unwrap_or_else(|| lineage::of_trigger(&self.trigger, None))
    }

    /// The instance types in the order a variant tries them (never empty for a valid config).
    pub fn instances(&self) -> Vec<Instances> {
        if self.instances.is_empty() {
            self.pipeline.training.instances()
        } else {
            self.instances.clone()
        }
    }

    /// Attempts a variant may make: one per fallback type, plus
    /// `sweep.max_retries`, plus the spot attempts before the fallback to
    /// on-demand (so the on-demand attempt is never cut off).
    pub fn max_attempts(&self) -> u32 {
        let fallbacks = self.instances().len().saturating_sub(1) as u32;
        self.pipeline.sweep.max_retries + 1 + fallbacks + self.spot_fallback_after().unwrap_or(0)
    }

    /// `spot.fallback_to_on_demand_after`, when the pipeline uses spot.
    pub fn spot_fallback_after(&self) -> Option<u32> {
        self.pipeline.training.spot.as_ref().and_then(|s| s.fallback_to_on_demand_after)
    }

    /// Whether a variant's next attempt runs on-demand after `capacity_failures`.
    pub fn on_demand_after(&self, capacity_failures: u32) -> bool {
        self.spot_fallback_after().is_some_and(|n| capacity_failures >= n)
    }

    /// The `CreateTrainingJob` input of a launch: [`Self::training_job`] on
    /// the launch's type, on-demand when the launch says so.
    pub fn launch_request(&self, launch: &crate::lanes::Launch) -> Result<CreateTrainingJob, MissingMountName> {
        let mut request = self.training_job(launch.position, launch.attempt, launch.choice)?;
        if launch.on_demand {
            request.enable_managed_spot_training = false;
            request.stopping_condition.max_wait_time_in_seconds = None;
        }
        Ok(request)
    }

    /// Position of an instance type in [`Self::instances`], if it is one of them.
    pub fn instance_position(&self, instance_type: &str) -> Option<usize> {
        self.instances().iter().position(|i| i.instance_type == instance_type)
    }

    /// Position in [`Self::instances`] of the type a job ran on (the preferred one when unknown).
    pub fn choice_of(&self, instance_type: Option<&str>) -> usize {
        instance_type.and_then(|t| self.instance_position(t)).unwrap_or(0)
    }

    pub fn max_parallel(&self) -> usize {
        self.pipeline.sweep.max_parallel.max(1) as usize
    }

    /// Lane of the variant at `position` in the manifest.
    pub fn lane_of(&self, position: usize) -> usize {
        position % self.max_parallel()
    }

    pub fn position_of(&self, variant_id: &str) -> Option<usize> {
        self.variants.iter().position(|v| v.id == variant_id)
    }

    pub fn job_name(&self, position: usize, attempt: u32) -> String {
        names::job_name(&self.pipeline.name, &self.sweep_id, &self.variants[position].id, attempt)
    }

    /// S3 key of this manifest in the artifacts bucket.
    pub fn key(&self) -> String {
        manifest_key(&self.pipeline.name, &self.sweep_id)
    }

    /// The `CreateTrainingJob` input of one attempt of the variant at
    /// `position`, on the instance type at `choice` of [`Self::instances`].
    /// Everything but the name, hyperparameters, tags and instances is the
    /// same for every job of the sweep, which is what lets a lane reuse a
    /// managed warm pool. The name does not depend on the type: one attempt
    /// is one job, whichever type its launch ends up on.
    pub fn training_job(&self, position: usize, attempt: u32, choice: usize) -> Result<CreateTrainingJob, MissingMountName> {
        let p = &self.pipeline;
        let t = &p.training;
        let fs = &p.file_system;
        let variant = &self.variants[position];
        let (fs_type, prefix) = match fs.kind {
            FileSystemKind::FsxLustre => {
                let mount = self.mount_name.as_deref().ok_or_else(|| MissingMountName {
                    file_system_id: fs.id.clone(),
                })?;
                ("FSxLustre", format!("/{mount}"))
            }
            FileSystemKind::Efs => ("EFS", String::new()),
        };
        let access = match fs.access_mode {
            AccessMode::ReadOnly => "ro",
            AccessMode::ReadWrite => "rw",
        };
        let mut hyper_parameters = stringify(&t.hyperparameters);
        hyper_parameters.extend(variant.hyperparameters.clone());
        let lane = self.lane_of(position);
        let mut tags: Vec<Tag> = t
            .tags
            .iter()
            .map(|(k, v)| Tag {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        for (key, value) in [
            (names::TAG_PIPELINE, p.name.clone()),
            (names::TAG_SWEEP, self.sweep_id.clone()),
            (names::TAG_VARIANT, variant.id.clone()),
            (names::TAG_LANE, lane.to_string()),
            (names::TAG_ATTEMPT, attempt.to_string()),
            (lineage::TAG_DATA_VERSION, self.data_version().version),
        ] {
            tags.push(Tag {
                key: key.to_owned(),
                value,
            });
        }
        Ok(CreateTrainingJob {
            training_job_name: self.job_name(position, attempt),
            role_arn: t.role_arn.clone(),
            algorithm_specification: AlgorithmSpecification {
                training_image: t.image.clone(),
                algorithm_name: t.algorithm_name.clone(),
                // File systems are mounted, not copied: SageMaker requires File mode for them.
                training_input_mode: "File".to_owned(),
                metric_definitions: t
                    .metric_definitions
                    .iter()
                    .map(|m| MetricDefinition {
                        name: m.name.clone(),
                        regex: m.regex.clone(),
                    })
                    .collect(),
            },
            hyper_parameters,
            input_data_config: t
                .channels
                .iter()
                .map(|c| InputChannel {
                    channel_name: c.name.clone(),
                    data_source: DataSource {
                        file_system_data_source: FileSystemDataSource {
                            file_system_id: fs.id.clone(),
                            file_system_type: fs_type.to_owned(),
                            file_system_access_mode: access.to_owned(),
                            directory_path: format!("{prefix}{}", c.directory),
                        },
                    },
                    content_type: c.content_type.clone(),
                })
                .collect(),
            output_data_config: OutputDataConfig {
                s3_output_path: t.output_path.clone(),
            },
            resource_config: self.resource_config(choice),
            vpc_config: VpcConfig {
                security_group_ids: p.vpc.security_groups.clone(),
                subnets: p.vpc.subnets.clone(),
            },
            stopping_condition: StoppingCondition {
                max_runtime_in_seconds: t.max_runtime_seconds,
                max_wait_time_in_seconds: t.spot.as_ref().map(|s| s.max_wait_seconds),
            },
            enable_managed_spot_training: t.spot.is_some(),
            environment: t.environment.clone(),
            tags,
        })
    }
}

impl SweepManifest {
    /// `ResourceConfig` on the type at `choice` (wrapping, so any index names a type).
    pub fn resource_config(&self, choice: usize) -> ResourceConfig {
        let instances = self.instances();
        let i = &instances[choice % instances.len().max(1)];
        ResourceConfig {
            instance_type: i.instance_type.clone(),
            instance_count: i.instance_count,
            volume_size_in_gb: i.volume_size_gb,
            keep_alive_period_in_seconds: self.pipeline.training.keep_alive_seconds,
            training_plan_arn: i.training_plan_arn.clone(),
        }
    }
}

/// S3 key of a sweep's manifest in the artifacts bucket.
pub fn manifest_key(pipeline: &str, sweep_id: &str) -> String {
    format!("sweeps/{pipeline}/{sweep_id}/manifest.json")
}

/// A Lustre `DirectoryPath` needs the mount name, and neither the config nor FSx gave it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the mount name of FSx for Lustre file system {file_system_id} is unknown: set file_system.mount_name, or allow fsx:DescribeFileSystems so retrain can look it up")]
pub struct MissingMountName {
    pub file_system_id: String,
}
