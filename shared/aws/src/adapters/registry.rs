//! The SageMaker Model Registry: model package groups and packages.

use super::sagemaker::SageMaker;
use crate::error::{aws, Error};
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types as sm;
use retrain_core::promotion::{ApprovalStatus, Production, Registration, META_SWEEP};
use std::collections::{BTreeMap, HashMap};
use tracing::instrument;

/// A package of the group as `DescribeModelPackage` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub arn: String,
    pub status: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// What the package is made of: the best job's artifacts and its image or algorithm.
pub struct Contents<'a> {
    pub model_data_url: &'a str,
    pub image: Option<&'a str>,
    pub algorithm_name: Option<&'a str>,
}

impl SageMaker {
    /// Creates the group, tagged, unless it exists. One Describe when it does.
    #[instrument(skip(self, tags))]
    pub async fn ensure_group(&self, name: &str, description: &str, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        let described = self
            .client
            .describe_model_package_group()
            .model_package_group_name(name)
            .send()
            .await;
        match described {
            Ok(_) => return Ok(()),
            // The registry answers ValidationException "... does not exist" for a missing group.
            Err(e) if e.as_service_error().is_none() => {
                return Err(aws("sagemaker:DescribeModelPackageGroup", format!("model package group {name}"), e));
            }
            Err(_) => {}
        }
        let tags: Vec<sm::Tag> = tags.iter().map(|(k, v)| sm::Tag::builder().key(k).value(v).build()).collect();
        let created = self
            .client
            .create_model_package_group()
            .model_package_group_name(name)
            .model_package_group_description(description)
            .set_tags(Some(tags))
            .send()
            .await;
        if let Err(e) = created {
            // A concurrent creator won: the group is there now.
            if self
                .client
                .describe_model_package_group()
                .model_package_group_name(name)
                .send()
                .await
                .is_err()
            {
                return Err(aws("sagemaker:CreateModelPackageGroup", format!("model package group {name}"), e));
            }
        }
        Ok(())
    }

    /// The group's newest Approved package and the objective value retrain recorded on it.
    #[instrument(skip(self))]
    pub async fn production(&self, group: &str) -> Result<Option<Production>, Error> {
        let listed = self
            .client
            .list_model_packages()
            .model_package_group_name(group)
            .model_approval_status(sm::ModelApprovalStatus::Approved)
            .sort_by(sm::ModelPackageSortBy::CreationTime)
            .sort_order(sm::SortOrder::Descending)
            .max_results(1)
            .send()
            .await
            .map_err(|e| aws("sagemaker:ListModelPackages", format!("Approved packages of {group}"), e))?;
        let Some(arn) = listed.model_package_summary_list().first().and_then(|p| p.model_package_arn()) else {
            return Ok(None);
        };
        let package = self.package(arn).await?;
        Ok(Some(Production {
            value: retrain_core::promotion::recorded_value(&package.metadata),
            arn: package.arn,
        }))
    }

    /// The package this sweep already registered, if any: the group's
    /// packages created since the decision, newest first, matched on the
    /// sweep id in their metadata. Finds a package whose creation reply was lost.
    #[instrument(skip(self))]
    pub async fn registered(&self, group: &str, sweep_id: &str, since: u64) -> Result<Option<Package>, Error> {
        let mut pages = self
            .client
            .list_model_packages()
            .model_package_group_name(group)
            // Clocks differ: a minute's margin before the decision.
            .creation_time_after(DateTime::from_secs(since.saturating_sub(60) as i64))
            .sort_by(sm::ModelPackageSortBy::CreationTime)
            .sort_order(sm::SortOrder::Descending)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws("sagemaker:ListModelPackages", format!("packages of {group}"), e))?;
            for arn in page.model_package_summary_list().iter().filter_map(|p| p.model_package_arn()) {
                let package = self.package(arn).await?;
                if package.metadata.get(META_SWEEP).map(String::as_str) == Some(sweep_id) {
                    return Ok(Some(package));
                }
            }
        }
        Ok(None)
    }

    async fn package(&self, arn: &str) -> Result<Package, Error> {
        let out = self
            .client
            .describe_model_package()
            .model_package_name(arn)
            .send()
            .await
            .map_err(|e| aws("sagemaker:DescribeModelPackage", format!("model package {arn}"), e))?;
        Ok(Package {
            arn: out.model_package_arn().unwrap_or(arn).to_owned(),
            status: out.model_approval_status().map(|s| s.as_str().to_owned()),
            metadata: out
                .customer_metadata_properties()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })
    }

    /// Creates the package, PendingManualApproval, with the decision's
    /// `ClientToken`: a repeated call answers the same package.
    #[instrument(skip(self, registration, contents), fields(group = %registration.group))]
    pub async fn create_package(&self, registration: &Registration, contents: &Contents<'_>) -> Result<String, Error> {
        let resource = format!("model package group {}", registration.group);
        let mut request = self
            .client
            .create_model_package()
            .model_package_group_name(&registration.group)
            .client_token(&registration.client_token)
            .model_package_description(truncate(&registration.comparison, 1000))
            .model_approval_status(sm::ModelApprovalStatus::PendingManualApproval)
            .set_customer_metadata_properties(Some(
                registration
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<HashMap<_, _>>(),
            ));
        if let Some(image) = contents.image {
            let container = sm::ModelPackageContainerDefinition::builder()
                .image(image)
                .model_data_url(contents.model_data_url)
                .build();
            request = request.inference_specification(
                sm::InferenceSpecification::builder()
                    .containers(container)
                    .supported_content_types("text/csv")
                    .supported_response_mime_types("text/csv")
                    .build(),
            );
        } else if let Some(algorithm) = contents.algorithm_name {
            let source = sm::SourceAlgorithm::builder()
                .algorithm_name(algorithm)
                .model_data_url(contents.model_data_url)
                .build();
            request = request.source_algorithm_specification(sm::SourceAlgorithmSpecification::builder().source_algorithms(source).build());
        }
        let out = request
            .send()
            .await
            .map_err(|e| aws("sagemaker:CreateModelPackage", resource.clone(), e))?;
        out.model_package_arn()
            .map(str::to_owned)
            .ok_or_else(|| Error::Setup(format!("{resource}: CreateModelPackage answered no ARN")))
    }

    /// Sets the package's approval status; rejected packages say why.
    #[instrument(skip(self, description))]
    pub async fn set_status(&self, arn: &str, status: ApprovalStatus, description: &str) -> Result<(), Error> {
        self.client
            .update_model_package()
            .model_package_arn(arn)
            .model_approval_status(sm::ModelApprovalStatus::from(status.as_str()))
            .approval_description(truncate(description, 1000))
            .send()
            .await
            .map_err(|e| aws("sagemaker:UpdateModelPackage", format!("model package {arn}"), e))?;
        Ok(())
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
