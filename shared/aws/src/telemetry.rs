//! JSON logs for CloudWatch: one object per line, no ANSI colours.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber; `RUST_LOG` (default `info`) filters it.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_current_span(false)
        .with_target(false)
        .flatten_event(true)
        .try_init();
}
