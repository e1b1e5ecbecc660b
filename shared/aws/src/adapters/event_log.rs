//! The stack's event log: the CloudWatch Logs group that the event-log rule
//! writes every retrain domain event to, one EventBridge event per log event.

use crate::error::{aws, Error};
use tracing::instrument;

#[derive(Clone, Debug)]
pub struct EventLog {
    client: aws_sdk_cloudwatchlogs::Client,
    group: String,
}

/// One log event: its ingestion timestamp (epoch ms) and the EventBridge event as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    pub timestamp_ms: i64,
    pub message: String,
}

impl EventLog {
    pub fn new(shared: &aws_config::SdkConfig, group: impl Into<String>) -> EventLog {
        EventLog {
            client: aws_sdk_cloudwatchlogs::Client::new(shared),
            group: group.into(),
        }
    }

    /// Every log event from `since_ms` on, oldest first, across the group's streams.
    #[instrument(skip(self), fields(group = %self.group))]
    pub async fn since(&self, since_ms: i64) -> Result<Vec<Logged>, Error> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .filter_log_events()
            .log_group_name(&self.group)
            .start_time(since_ms)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws("logs:FilterLogEvents", format!("log group {}", self.group), e))?;
            out.extend(page.events().iter().filter_map(|e| {
                Some(Logged {
                    timestamp_ms: e.timestamp()?,
                    message: e.message()?.to_owned(),
                })
            }));
        }
        out.sort_by_key(|l| l.timestamp_ms);
        Ok(out)
    }
}
