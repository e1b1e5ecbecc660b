//! `retrain events`: the stack's event log as a timeline.

use anyhow::{anyhow, Result};
use retrain_aws::adapters::event_log::EventLog;
use retrain_core::event_log::{parse_since, timeline, Entry, Filter};
use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often `--follow` asks for new events.
const FOLLOW_EVERY: Duration = Duration::from_secs(5);

pub struct Args {
    pub log_group: String,
    pub filter: Filter,
    pub since: String,
    pub follow: bool,
    pub json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let since = parse_since(&args.since).map_err(|e| anyhow!(e))?;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let log = EventLog::new(&retrain_aws::adapters::shared_config().await, &args.log_group);
        let mut from = now_ms - since as i64 * 1000;
        let mut seen = HashSet::new();
        let mut shown = 0;
        loop {
            let logged = log
                .since(from)
                .await
                .map_err(|e| anyhow!("{e}\n(--log-group {}: the stack's output EventLogGroupName)", args.log_group))?;
            // Ask again from the newest timestamp: ties are dropped by event id.
            from = logged.iter().map(|l| l.timestamp_ms).max().unwrap_or(from);
            let (entries, _) = timeline(logged.iter().map(|l| l.message.as_str()), &args.filter, &mut seen);
            if !(args.follow && entries.is_empty()) {
                print(&entries, args.json, shown == 0 && !args.follow);
            }
            shown += entries.len();
            if !args.follow {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    })
}

fn print(entries: &[Entry], json: bool, say_when_empty: bool) {
    if json {
        // One JSON object per line, so `--follow --json` streams.
        for e in entries {
            crate::say!("{}", serde_json::to_string(e).unwrap_or_default());
        }
        return;
    }
    if entries.is_empty() {
        if say_when_empty {
            crate::say!("no retrain events in that time (widen --since, or check --pipeline and --sweep)");
        }
        return;
    }
    let mut table = comfy_table::Table::new();
    table.set_header(["time", "event", "pipeline", "sweep", "what happened"]);
    for e in entries {
        table.add_row([
            e.time.as_str(),
            e.detail_type.as_str(),
            e.pipeline.as_deref().unwrap_or(""),
            e.sweep_id.as_deref().unwrap_or(""),
            e.summary.as_str(),
        ]);
    }
    crate::say!("{table}");
}
