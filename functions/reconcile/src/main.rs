//! The reconcile Lambda function: a thin shell over `retrain_aws::handlers::reconcile`.

use lambda_runtime::{run, service_fn, LambdaEvent};
use retrain_aws::handlers::reconcile;
use retrain_aws::{telemetry, Deps};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    // Config, settings and clients once per cold start; a bad config fails
    // the init with every problem listed.
    let deps = Deps::from_env()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        reconcile::handle(deps, &event.payload).await
    }))
    .await
}
