//! Read-only descriptions of what a pipeline's jobs can run on: the applied
//! SageMaker quotas (Service Quotas) and its training plan, turned into the
//! facts that `retrain_core::preflight::capacity` checks.

use crate::error::{aws, Error};
use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use aws_smithy_types::error::display::DisplayErrorContext;
use retrain_core::config::Pipeline;
use retrain_core::names;
use retrain_core::preflight::capacity::{quota_names, CapacityFacts, PlanFacts, Quota, QuotaFacts, Reserved, SERVICE_CODE};
use std::collections::BTreeMap;
use tracing::instrument;

/// `ListServiceQuotas` pages hold at most 100 quotas.
const PAGE: i32 = 100;

#[derive(Clone, Debug)]
pub struct Capacity {
    quotas: aws_sdk_servicequotas::Client,
    sagemaker: aws_sdk_sagemaker::Client,
}

impl Capacity {
    pub fn new(quotas: aws_sdk_servicequotas::Client, sagemaker: aws_sdk_sagemaker::Client) -> Capacity {
        Capacity { quotas, sagemaker }
    }

    /// Describes the quotas and the training plan `pipeline`'s jobs count against.
    #[instrument(skip(self, pipeline), fields(pipeline = %pipeline.name))]
    pub async fn facts(&self, pipeline: &Pipeline) -> Result<CapacityFacts, Error> {
        let quotas = self.quotas(&quota_names(pipeline)).await;
        let plan = match &pipeline.training.training_plan_arn {
            Some(arn) => self.plan(arn).await?,
            None => None,
        };
        Ok(CapacityFacts {
            quotas,
            plan,
            region: self.sagemaker.config().region().map(|r| r.to_string()),
        })
    }

    /// The applied values of the `wanted` SageMaker quotas. A read that
    /// fails (denied, throttled past the SDK's retries, unavailable) is
    /// reported in `unreadable` rather than as an error: quotas inform the
    /// choice of types, and the launch itself still enforces them.
    async fn quotas(&self, wanted: &[String]) -> QuotaFacts {
        let mut quotas = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .quotas
                .list_service_quotas()
                .service_code(SERVICE_CODE)
                .max_results(PAGE)
                .set_next_token(token)
                .send()
                .await;
            let out = match page {
                Ok(out) => out,
                Err(e) => {
                    let why = match (e.code(), e.message()) {
                        (Some(code), Some(message)) => format!("servicequotas:ListServiceQuotas: {code}: {message}"),
                        _ => format!("servicequotas:ListServiceQuotas: {}", DisplayErrorContext(&e)),
                    };
                    tracing::warn!(error = %why, "SageMaker quotas unreadable");
                    return QuotaFacts {
                        quotas: BTreeMap::new(),
                        unreadable: Some(why),
                    };
                }
            };
            for q in out.quotas() {
                let (Some(name), Some(code), Some(value)) = (q.quota_name(), q.quota_code(), q.value()) else {
                    continue;
                };
                if wanted.iter().any(|w| w == name) {
                    quotas.insert(
                        name.to_owned(),
                        Quota {
                            code: code.to_owned(),
                            value,
                        },
                    );
                }
            }
            token = out.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            if token.is_none() || quotas.len() == wanted.len() {
                return QuotaFacts { quotas, unreadable: None };
            }
        }
    }

    /// The training plan; `None` when it does not exist (or the ARN names none).
    async fn plan(&self, arn: &str) -> Result<Option<PlanFacts>, Error> {
        let Some(parts) = names::training_plan_arn(arn) else {
            return Ok(None);
        };
        let described = self.sagemaker.describe_training_plan().training_plan_name(parts.name).send().await;
        let out = match described {
            Ok(out) => out,
            Err(e) if e.code() == Some("ResourceNotFound") => return Ok(None),
            Err(e) => return Err(aws("sagemaker:DescribeTrainingPlan", arn.to_owned(), e)),
        };
        Ok(Some(PlanFacts {
            name: out.training_plan_name().unwrap_or(parts.name).to_owned(),
            status: out.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            target_resources: out.target_resources().iter().map(|t| t.as_str().to_owned()).collect(),
            reserved: out
                .reserved_capacity_summaries()
                .iter()
                .filter_map(|c| {
                    Some(Reserved {
                        instance_type: c.instance_type()?.as_str().to_owned(),
                        instance_count: u32::try_from(c.total_instance_count()?).ok()?,
                    })
                })
                .collect(),
        }))
    }
}
