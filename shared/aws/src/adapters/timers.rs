//! Durable timers: SQS messages with `DelaySeconds`. No Lambda sleeps.

use crate::error::{aws, Error};
use retrain_core::messages::Message;
use tracing::instrument;

#[derive(Clone, Debug)]
pub struct Timers {
    client: aws_sdk_sqs::Client,
}

impl Timers {
    pub fn new(client: aws_sdk_sqs::Client) -> Timers {
        Timers { client }
    }

    /// Delivers `message` to `queue_url` after `delay_seconds` (at most 900).
    #[instrument(skip(self, message))]
    pub async fn arm(&self, queue_url: &str, message: &Message, delay_seconds: u32) -> Result<(), Error> {
        let body = serde_json::to_string(message).map_err(|e| Error::Setup(format!("cannot encode timer message: {e}")))?;
        self.client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .delay_seconds(delay_seconds.min(900) as i32)
            .send()
            .await
            .map_err(|e| aws("sqs:SendMessage", queue_url.to_owned(), e))?;
        Ok(())
    }
}
