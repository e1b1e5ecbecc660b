//! Domain events on the EventBridge bus.

use crate::adapters::store::{Created, Store};
use crate::error::{aws, Error};
use retrain_core::events::{once_marker_key, DomainEvent};
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

    /// Publishes one event.
    #[instrument(skip(self, event), fields(bus = %self.name, detail_type = event.detail_type()))]
    pub async fn publish(&self, event: &DomainEvent) -> Result<(), Error> {
        let entry = event.entry(&self.name);
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
                retryable: code.contains("Throttl") || code.contains("InternalFailure"),
                fix: "check that the bus exists and the function may put events on it".to_owned(),
                code,
                message,
            });
        }
        info!(event = %event.detail(), "published {}", event.detail_type());
        Ok(())
    }

    /// Publishes `event` once per `scope`, even under duplicate or concurrent
    /// deliveries: a create-once marker picks the one publisher. If the
    /// publish fails, the marker is removed so a retry can publish.
    pub async fn publish_once(&self, store: &Store, scope: &str, event: &DomainEvent) -> Result<bool, Error> {
        let marker = once_marker_key(scope, event.detail_type());
        if store.put_once(&marker, &event.detail()).await? == Created::AlreadyThere {
            return Ok(false);
        }
        if let Err(e) = self.publish(event).await {
            store.delete(&marker).await?;
            return Err(e);
        }
        Ok(true)
    }
}
