//! `retrain events`: the domain events the event-log rule wrote to
//! CloudWatch Logs, as a timeline. Each log message is the EventBridge event
//! as delivered; a publication retried after a crash arrives twice under
//! one `event_id`, and the timeline shows it once.

use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;

/// One domain event on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The event's `time` (RFC 3339).
    pub time: String,
    pub detail_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// What happened, in one line.
    pub summary: String,
    pub detail: Value,
}

/// Which events to show: all of them, or one pipeline's, or one sweep's.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub pipeline: Option<String>,
    pub sweep_id: Option<String>,
}

impl Filter {
    fn keeps(&self, detail: &Value) -> bool {
        let pipeline_ok = self
            .pipeline
            .as_deref()
            .is_none_or(|p| detail["pipeline"] == p || detail["pipelines"].as_array().is_some_and(|all| all.iter().any(|x| x == p)));
        let sweep_ok = self.sweep_id.as_deref().is_none_or(|s| detail["sweep_id"] == s);
        pipeline_ok && sweep_ok
    }
}

/// Reads one log message. `None`: not a retrain domain event (another source, or not JSON).
pub fn parse(message: &str) -> Option<Entry> {
    let event: Value = serde_json::from_str(message).ok()?;
    if event["source"] != crate::events::EVENT_SOURCE {
        return None;
    }
    let detail_type = event["detail-type"].as_str()?.to_owned();
    let detail = event["detail"].clone();
    let text = |k: &str| detail[k].as_str().map(str::to_owned);
    Some(Entry {
        time: event["time"].as_str().unwrap_or_default().to_owned(),
        summary: summary(&detail_type, &detail),
        pipeline: text("pipeline").or_else(|| {
            detail["pipelines"]
                .as_array()
                .map(|p| p.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
        }),
        sweep_id: text("sweep_id"),
        event_id: text("event_id"),
        detail_type,
        detail,
    })
}

/// The entries of `messages` that `filter` keeps, each `event_id` once
/// (`seen` carries the ids across the polls of `--follow`), in time order.
/// Also returns how many messages were not retrain events.
pub fn timeline<'m>(messages: impl IntoIterator<Item = &'m str>, filter: &Filter, seen: &mut HashSet<String>) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut foreign = 0;
    for message in messages {
        let Some(entry) = parse(message) else {
            foreign += 1;
            continue;
        };
        if !filter.keeps(&entry.detail) {
            continue;
        }
        if let Some(id) = &entry.event_id {
            if !seen.insert(id.clone()) {
                continue;
            }
        }
        entries.push(entry);
    }
    // RFC 3339 in UTC sorts as text; the sort is stable, so ties keep log order.
    entries.sort_by(|a, b| a.time.cmp(&b.time));
    (entries, foreign)
}

fn summary(detail_type: &str, d: &Value) -> String {
    let s = |k: &str| d[k].as_str().unwrap_or("?").to_owned();
    let n = |k: &str| d[k].to_string();
    let list = |k: &str| {
        d[k].as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    match detail_type {
        "DataImportStarted" => format!(
            "import {} on {}: {} object(s), attempt {}",
            s("task_id"),
            s("file_system_id"),
            n("objects"),
            n("attempt")
        ),
        "DataImportCompleted" => format!("import {} succeeded; sweeps to start: [{}]", s("task_id"), list("settled")),
        "DataImportFailed" => format!(
            "import {} failed: {}{}",
            s("task_id"),
            s("failure"),
            if d["will_retry"] == true { " (retried)" } else { "" }
        ),
        "SweepStarted" => format!(
            "{} variant(s) in {} lane(s) on {}, data {}",
            n("variants"),
            n("max_parallel"),
            s("file_system_id"),
            d["data_version"]["version"].as_str().unwrap_or("?")
        ),
        "TrainingJobLaunched" => format!("{} (lane {}, attempt {})", s("training_job_name"), n("lane"), n("attempt")),
        "VariantRetried" => format!("{} after {}: {}", s("training_job_name"), s("previous_training_job_name"), s("why")),
        "SweepCompleted" => match d["best"]["variant_id"].as_str() {
            Some(best) => format!(
                "best {best} ({} {}); {} ranked, {} unranked",
                s("metric"),
                d["best"]["metric"],
                n("ranked"),
                n("unranked")
            ),
            None => format!("no ranked variant; {} unranked", n("unranked")),
        },
        "ModelRegistered" => format!("{}: {}", s("status"), s("reason")),
        "SweepBlocked" => list("problems"),
        "LaunchDeferred" => format!("{}: {}; {}", s("training_job_name"), s("code"), s("fix")),
        "ImportStalled" | "SweepStalled" => format!("{}; {}", s("problem"), s("fix")),
        _ => d.to_string(),
    }
}

/// `--since`: a whole number and a unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `1h`, `2d`), in seconds.
pub fn parse_since(text: &str) -> Result<u64, String> {
    let unit = text.chars().last().unwrap_or(' ');
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => {
            return Err(format!(
                "--since {text:?}: give a number and a unit, s, m, h or d (e.g. 15m, 1h, 2d)"
            ))
        }
    };
    let digits = text.strip_suffix(unit).unwrap_or_default();
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("--since {text:?}: {digits:?} is not a whole number (e.g. 15m, 1h, 2d)"))?;
    Ok(number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../events/domain/{name}.json", env!("CARGO_MANIFEST_DIR"))).expect("example")
    }

    #[test]
    fn every_documented_event_reads_with_a_summary() {
        for t in crate::events::DETAIL_TYPES {
            let entry = parse(&example(t)).unwrap_or_else(|| panic!("{t} reads"));
            assert_eq!(entry.detail_type, t);
            assert!(!entry.summary.contains('?'), "{t}: {}", entry.summary);
            assert!(entry.event_id.is_some(), "{t}");
        }
    }

    #[test]
    fn a_retried_publication_shows_once_and_filters_keep_what_they_name() {
        let started = example("SweepStarted");
        let import = example("DataImportCompleted");
        let messages = [
            started.as_str(),
            import.as_str(),
            started.as_str(),
            "not json",
            r#"{"source":"aws.s3"}"#,
        ];
        let (all, foreign) = timeline(messages, &Filter::default(), &mut HashSet::new());
        assert_eq!(all.len(), 2);
        assert_eq!(foreign, 2);
        let churn = Filter {
            pipeline: Some("churn".into()),
            sweep_id: None,
        };
        assert_eq!(
            timeline(messages, &churn, &mut HashSet::new()).0.len(),
            2,
            "imports name their pipelines in a list"
        );
        let sweep = Filter {
            pipeline: None,
            sweep_id: Some("5d41402abc".into()),
        };
        let (of_sweep, _) = timeline(messages, &sweep, &mut HashSet::new());
        assert_eq!(
            of_sweep.iter().map(|e| e.detail_type.as_str()).collect::<Vec<_>>(),
            ["SweepStarted"]
        );
        let mut seen = HashSet::new();
        timeline(messages, &Filter::default(), &mut seen);
        assert!(
            timeline(messages, &Filter::default(), &mut seen).0.is_empty(),
            "a follow-up poll shows nothing twice"
        );
    }

    #[test]
    fn since_takes_a_number_and_a_unit() {
        assert_eq!(parse_since("90s"), Ok(90));
        assert_eq!(parse_since("15m"), Ok(900));
        assert_eq!(parse_since("1h"), Ok(3600));
        assert_eq!(parse_since("2d"), Ok(172_800));
        assert!(parse_since("1w").is_err_and(|e| e.contains("s, m, h or d")));
        assert!(parse_since("h").is_err());
        assert!(parse_since("").is_err());
        assert!(parse_since("1é").is_err(), "no panic on a multi-byte unit");
    }
}
