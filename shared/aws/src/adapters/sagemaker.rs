//! SageMaker training jobs.

use crate::error::{aws, Error};
use aws_sdk_sagemaker::types as sm;
use retrain_core::failure::JobStatus;
use retrain_core::requests::CreateTrainingJob;
use retrain_core::telemetry::Transition;
use tracing::instrument;

#[derive(Clone, Debug)]
pub struct SageMaker {
    pub(crate) client: aws_sdk_sagemaker::Client,
}

/// What `CreateTrainingJob` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launched {
    Created,
    /// `ResourceInUse`: a job of this name exists, so this launch already happened.
    AlreadyExists,
    /// A quota or throttling refused it: try again later, never drop it.
    Deferred {
        code: String,
        message: String,
    },
}

/// A training job as SageMaker describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDetails {
    pub name: String,
    pub status: JobStatus,
    pub secondary_status: Option<String>,
    pub failure_reason: Option<String>,
    pub metrics: Vec<(String, f64)>,
    /// `SecondaryStatusTransitions`, times in epoch seconds.
    pub transitions: Vec<Transition>,
    pub billable_seconds: Option<i64>,
    /// `WarmPoolStatus.ReusedByJob`: the later job that started on this job's warm pool.
    pub warm_pool_reused_by: Option<String>,
    /// `WarmPoolStatus.ResourceRetainedBillableTimeInSeconds`: what keeping the pool billed, once SageMaker reports it.
    pub warm_pool_billable_seconds: Option<i64>,
    /// `ModelArtifacts.S3ModelArtifacts`.
    pub model_artifacts: Option<String>,
    /// `ResourceConfig.InstanceType`.
    pub instance_type: Option<String>,
    /// `TrainingTimeInSeconds`.
    pub training_time_seconds: Option<i64>,
    /// `EnableManagedSpotTraining`.
    pub managed_spot: bool,
}

impl JobDetails {
    /// Where the job's time went, with a spot job's savings.
    pub fn timing(&self, warm_pool_reused: bool) -> retrain_core::telemetry::JobTiming {
        retrain_core::telemetry::timing(&self.transitions, self.billable_seconds, warm_pool_reused)
            .with_spot(self.managed_spot, self.training_time_seconds)
    }
}

impl SageMaker {
    pub fn new(client: aws_sdk_sagemaker::Client) -> SageMaker {
        SageMaker { client }
    }

    #[instrument(skip(self, job), fields(training_job = %job.training_job_name))]
    pub async fn launch(&self, job: &CreateTrainingJob) -> Result<Launched, Error> {
        let spec = &job.algorithm_specification;
        let algorithm = sm::AlgorithmSpecification::builder()
            .set_training_image(spec.training_image.clone())
            .set_algorithm_name(spec.algorithm_name.clone())
            .training_input_mode(sm::TrainingInputMode::from(spec.training_input_mode.as_str()))
            .set_metric_definitions(if spec.metric_definitions.is_empty() {
                None
            } else {
                Some(
                    spec.metric_definitions
                        .iter()
                        .map(|m| sm::MetricDefinition::builder().name(&m.name).regex(&m.regex).build())
                        .collect(),
                )
            })
            .build();
        let channels = job
            .input_data_config
            .iter()
            .map(|c| {
                let fs = &c.data_source.file_system_data_source;
                let source = sm::FileSystemDataSource::builder()
                    .file_system_id(&fs.file_system_id)
                    .file_system_type(sm::FileSystemType::from(fs.file_system_type.as_str()))
                    .file_system_access_mode(sm::FileSystemAccessMode::from(fs.file_system_access_mode.as_str()))
                    .directory_path(&fs.directory_path)
                    .build();
                sm::Channel::builder()
                    .channel_name(&c.channel_name)
                    .data_source(sm::DataSource::builder().file_system_data_source(source).build())
                    .set_content_type(c.content_type.clone())
                    .build()
            })
            .collect::<Vec<_>>();
        let rc = &job.resource_config;
        let resources = sm::ResourceConfig::builder()
            .instance_type(sm::TrainingInstanceType::from(rc.instance_type.as_str()))
            .instance_count(rc.instance_count as i32)
            .volume_size_in_gb(rc.volume_size_in_gb as i32)
            .set_keep_alive_period_in_seconds(rc.keep_alive_period_in_seconds.map(|k| k as i32))
            .set_training_plan_arn(rc.training_plan_arn.clone())
            .build();
        let vpc = sm::VpcConfig::builder()
            .set_security_group_ids(Some(job.vpc_config.security_group_ids.clone()))
            .set_subnets(Some(job.vpc_config.subnets.clone()))
            .build();
        let stopping = sm::StoppingCondition::builder()
            .max_runtime_in_seconds(job.stopping_condition.max_runtime_in_seconds as i32)
            .set_max_wait_time_in_seconds(job.stopping_condition.max_wait_time_in_seconds.map(|w| w as i32))
            .build();
        let output = sm::OutputDataConfig::builder()
            .s3_output_path(&job.output_data_config.s3_output_path)
            .build();
        let tags = job
            .tags
            .iter()
            .map(|t| sm::Tag::builder().key(&t.key).value(&t.value).build())
            .collect::<Vec<_>>();
        let result = self
            .client
            .create_training_job()
            .training_job_name(&job.training_job_name)
            .role_arn(&job.role_arn)
            .algorithm_specification(algorithm)
            .set_hyper_parameters(Some(job.hyper_parameters.clone().into_iter().collect()))
            .set_input_data_config(Some(channels))
            .output_data_config(output)
            .resource_config(resources)
            .vpc_config(vpc)
            .stopping_condition(stopping)
            .enable_managed_spot_training(job.enable_managed_spot_training)
            .set_environment(if job.environment.is_empty() {
                None
            } else {
                Some(job.environment.clone().into_iter().collect())
            })
            .set_tags(Some(tags))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Launched::Created),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use()) => Ok(Launched::AlreadyExists),
            Err(e) => {
                let err = aws("sagemaker:CreateTrainingJob", format!("training job {}", job.training_job_name), e);
                match &err {
                    Error::Aws {
                        retryable: true,
                        code,
                        message,
                        ..
                    } => Ok(Launched::Deferred {
                        code: code.clone(),
                        message: message.clone(),
                    }),
                    _ => Err(err),
                }
            }
        }
    }

    /// Names and statuses of every job whose name contains `prefix`.
    #[instrument(skip(self))]
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, JobStatus)>, Error> {
        let mut jobs = Vec::new();
        let mut pages = self
            .client
            .list_training_jobs()
            .name_contains(prefix)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws("sagemaker:ListTrainingJobs", format!("jobs named {prefix}*"), e))?;
            for s in page.training_job_summaries() {
                let name = s.training_job_name().unwrap_or_default();
                if !name.starts_with(prefix) {
                    continue;
                }
                if let Some(status) = s.training_job_status().and_then(|st| JobStatus::parse(st.as_str())) {
                    jobs.push((name.to_owned(), status));
                }
            }
        }
        Ok(jobs)
    }

    #[instrument(skip(self))]
    pub async fn describe(&self, name: &str) -> Result<JobDetails, Error> {
        let out = self
            .client
            .describe_training_job()
            .training_job_name(name)
            .send()
            .await
            .map_err(|e| aws("sagemaker:DescribeTrainingJob", format!("training job {name}"), e))?;
        let status = out
            .training_job_status()
            .and_then(|s| JobStatus::parse(s.as_str()))
            .ok_or_else(|| Error::Aws {
                operation: "sagemaker:DescribeTrainingJob",
                resource: format!("training job {name}"),
                code: "UnknownStatus".to_owned(),
                message: format!("status {:?}", out.training_job_status()),
                fix: "upgrade retrain: SageMaker reported a status it does not know".to_owned(),
                retryable: false,
            })?;
        Ok(JobDetails {
            name: name.to_owned(),
            status,
            secondary_status: out.secondary_status().map(|s| s.as_str().to_owned()),
            failure_reason: out.failure_reason().map(str::to_owned),
            metrics: out
                .final_metric_data_list()
                .iter()
                // The SDK holds MetricData.Value as f32: go through its shortest decimal
                // text so 0.9 stays 0.9 beside the exact values events carry.
                .filter_map(|m| Some((m.metric_name()?.to_owned(), m.value()?.to_string().parse::<f64>().ok()?)))
                .collect(),
            transitions: out
                .secondary_status_transitions()
                .iter()
                .filter_map(|t| {
                    Some(Transition {
                        status: t.status()?.as_str().to_owned(),
                        start: t.start_time()?.as_secs_f64(),
                        end: t.end_time().map(|e| e.as_secs_f64()),
                    })
                })
                .collect(),
            billable_seconds: out.billable_time_in_seconds().map(i64::from),
            warm_pool_reused_by: out.warm_pool_status().and_then(|w| w.reused_by_job()).map(str::to_owned),
            warm_pool_billable_seconds: out
                .warm_pool_status()
                .and_then(|w| w.resource_retained_billable_time_in_seconds())
                .map(i64::from),
            model_artifacts: out.model_artifacts().and_then(|m| m.s3_model_artifacts()).map(str::to_owned),
            instance_type: out.resource_config().and_then(|r| r.instance_type()).map(|t| t.as_str().to_owned()),
            training_time_seconds: out.training_time_in_seconds().map(i64::from),
            managed_spot: out.enable_managed_spot_training().unwrap_or(false),
        })
    }
}
