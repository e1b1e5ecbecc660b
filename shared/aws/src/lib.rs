//! The imperative shell of retrain: AWS adapters and the Lambda handlers
//! that run decode → decide (retrain-core) → execute → report.

pub mod adapters;
pub mod deps;
pub mod error;
pub mod handlers;
pub mod settings;
pub mod telemetry;

pub use deps::Deps;
pub use error::Error;
