//! The functional core of retrain: configuration, event decoding, planning
//! and the exact AWS requests, as pure functions over plain data. The AWS
//! adapters and Lambda handlers live in `retrain-aws`.

pub mod budget;
pub mod config;
pub mod event_log;
pub mod events;
pub mod failure;
pub mod import_plan;
pub mod inbound;
pub mod lanes;
pub mod lineage;
pub mod messages;
pub mod names;
pub mod pending;
pub mod plan;
pub mod preflight;
pub mod promotion;
pub mod requests;
pub mod s3_uri;
pub mod search;
pub mod search_records;
pub mod status;
pub mod sweep;
pub mod sweep_records;
pub mod telemetry;

pub use config::{Config, ConfigError, ConfigErrors, Pipeline};
