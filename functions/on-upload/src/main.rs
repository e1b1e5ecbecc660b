//! The on-upload Lambda function: a thin shell over `retrain_aws::handlers::on_upload`.

use lambda_runtime::{run, service_fn, LambdaEvent};
use retrain_aws::handlers::on_upload;
use retrain_aws::{telemetry, Deps};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    // Config, settings and clients once per cold start; a bad config fails
    // the init with every problem listed.
    let deps = Deps::from_env()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let deps = &deps;
    // The payload stays JSON text: a 6 MB SQS batch is decoded in place.
    run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        on_upload::handle_text(deps, event.payload.get()).await
    }))
    .await
}
