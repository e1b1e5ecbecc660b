//! Domain events on the EventBridge bus.

use crate::adapters::store::{Created, Store};
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
    pub async fn publish(&self, event: &DomainEvent, event_id: &str) -> Result<(), Error> {
        self.publish_all(&[(event, event_id.to_owned())]).await
    }

    /// Publishes up to 10 events in one `PutEvents`, each with its id. A
    /// partly failed call is an error: the retry publishes all again, under
    /// the same ids.
    #[instrument(skip_all, fields(bus = %self.name, events = events.len()))]
    pub async fn publish_all(&self, events: &[(&DomainEvent, String)]) -> Result<(), Error> {
        let entries = events
            .iter()
            .map(|(event, id)| {
                let entry = event.entry(&self.name, id);
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source(entry.source)
                    .detail_type(entry.detail_type)
                    .detail(entry.detail)
                    .event_bus_name(entry.event_bus_name)
                    .build()
            })
            .collect();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
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
        for (event, event_id) in events {
            info!(event_id, event = %event.detail(), "published {}", event.detail_type());
        }
        Ok(())
    }

    /// Publishes events of `scope` that nobody can have published yet (their
    /// subject was created by this very invocation), in one `PutEvents`,
    /// then writes their done-markers in order: the same guarantee as
    /// [`Bus::publish_once`] without first looking for the markers.
    /// Publishes `events` together and marks each; returns those whose
    /// marker this call created (a retry after a crash publishes again,
    /// under the same ids, but only one call creates each marker).
    pub async fn publish_new<'e>(&self, store: &Store, scope: &str, events: &'e [DomainEvent]) -> Result<Vec<&'e DomainEvent>, Error> {
        let with_ids: Vec<(&DomainEvent, String)> = events.iter().map(|e| (e, event_id(scope, e.detail_type()))).collect();
        self.publish_all(&with_ids).await?;
        let mut marked = Vec::new();
        for event in events {
            let marker = once_marker_key(scope, event.detail_type());
            if store.put_once(&marker, &event.detail()).await? == Created::Now {
                marked.push(event);
            }
        }
        Ok(marked)
    }

    /// Publishes `event` for `scope` at least once, with an id derived from
    /// the scope. The done-marker is written *after* `PutEvents` succeeded:
    /// an invocation that dies in between leaves no marker, so its retry (or
    /// the reconciler) publishes again, under the same id. A marker written
    /// first would lose the event for good. Returns whether this call wrote
    /// the marker: true for exactly one publication, whatever the retries.
    pub async fn publish_once(&self, store: &Store, scope: &str, event: &DomainEvent) -> Result<bool, Error> {
        let marker = once_marker_key(scope, event.detail_type());
        if store.exists(&marker).await? {
            return Ok(false);
        }
        self.publish(event, &event_id(scope, event.detail_type())).await?;
        Ok(store.put_once(&marker, &event.detail()).await? == Created::Now)
    }
}
