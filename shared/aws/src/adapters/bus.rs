//! Domain events on the EventBridge bus.

use crate::adapters::store::Store;
use crate::error::{aws, Error};
use retrain_core::events::{event_id, once_marker_key, DomainEvent};
use tracing::{info, instrument};

#[derive(Clone, Debug)]
pub struct Bus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

impl Bus {
    pub fn new(client: aws_sdk_eventbridge::Client, name: impl Into<String>) -> Bus {
        Bus { client, name: name.into() }
    }

    /// Publishes one event with the id its subscribers deduplicate on.
    #[instrument(skip(self, event), fields(bus = %self.name, detail_type = event.detail_type()))]
    pub async fn publish(&self, event: &DomainEvent, event_id: &str) -> Result<(), Error> {
        let entry = event.entry(&self.name, event_id);
        let request = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(entry.source)
            .detail_type(entry.detail_type)
            .detail(entry.detail)
            .event_bus_name(entry.event_bus_name)
            .build();
        let out = self
            .client
            .put_events()
            .entries(request)
            .send()
            .await
            .map_err(|e| aws("events:PutEvents", format!("event bus {}", self.name), e))?;
        if out.failed_entry_count() > 0 {
            let failed = out
                .entries()
                .iter()
                .find_map(|e| e.error_code().map(|c| (c.to_owned(), e.error_message().unwrap_or("").to_owned())));
            let (code, message) = failed.unwrap_or_default();
            return Err(Error::Aws {
                operation: "events:PutEvents",
                resource: format!("event bus {}", self.name),
                // A failed entry was not published: trying again is always safe.
                retryable: true,
                fix: "the event is published again on the retry; if it keeps failing, check that the bus exists and the function may put events on it".to_owned(),
                code,
                message,
            });
        }
        info!(event_id, event = %event.detail(), "published {}", event.detail_type());
        Ok(())
    }

    /// Publishes `event` for `scope` at least once, with an id derived from
    /// the scope. The done-marker is written *after* `PutEvents` succeeded:
    /// an invocation that dies in between leaves no marker, so its retry (or
    /// the reconciler) publishes again, under the same id. A marker written
    /// first would lose the event for good. Returns whether it published now.
    pub async fn publish_once(&self, store: &Store, scope: &str, event: &DomainEvent) -> Result<bool, Error> {
        let marker = once_marker_key(scope, event.detail_type());
        if store.exists(&marker).await? {
            return Ok(false);
        }
        self.publish(event, &event_id(scope, event.detail_type())).await?;
        store.put_once(&marker, &event.detail()).await?;
        Ok(true)
    }
}
