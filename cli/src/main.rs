//! `retrain`: validate a configuration, print its schema, and plan what the
//! system would do with an event — without writing to AWS.

mod events;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use retrain_core::config::{self, FileSystemKind};
use retrain_core::plan::{plan, Plan, PlanContext};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `println!` that ends the program quietly when stdout is a closed pipe
/// (`retrain schema | head`), instead of panicking.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::write_line(&format!($($arg)*))
    };
}

pub(crate) fn write_line(text: &str) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{text}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("retrain: cannot write to standard output: {e}");
        std::process::exit(2);
    }
}

#[derive(Parser)]
#[command(
    name = "retrain",
    version,
    about = "Keep models fresh by training straight from FSx for Lustre or EFS."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a configuration: every error with its field path and the fix.
    #[command(
        after_help = "Examples:\n  retrain validate --config examples/pipelines.yaml\n  retrain validate --config pipelines.yaml --json\n  retrain validate --live --config pipelines.yaml   # also check the account, read-only\n\nWith --live, every pipeline's file system, subnets and security groups are described\n(fsx, efs, ec2 Describe* calls only), its instance types checked against the account's\nSageMaker quotas (servicequotas:ListServiceQuotas) and its training plan\n(sagemaker:DescribeTrainingPlan), as start-sweep does before a launch."
    )]
    Validate {
        /// The configuration file (YAML or JSON).
        #[arg(long)]
        config: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Also run the preflight checks against the AWS account (read-only).
        #[arg(long)]
        live: bool,
    },
    /// Print the JSON Schema of the configuration (or, with --events, of each domain event's detail).
    #[command(after_help = "Examples:\n  retrain schema > retrain.schema.json\n  retrain schema --events > events/domain/schemas.json")]
    Schema {
        /// Schemas of the domain events' `detail`, keyed by detail-type.
        #[arg(long)]
        events: bool,
    },
    /// Show a sweep's variants: lane, attempt, status, metric and where each job's start-up time went.
    #[command(
        after_help = "Examples:\n  retrain status --sweep 5d41402abc\n  retrain status --sweep 5d41402abc --json\n  retrain status --sweep 5d41402abc --compare my-old-s3-file-mode-job\n\nReads the sweep manifest from the artifacts bucket and the jobs from SageMaker (read-only)."
    )]
    Status {
        /// The sweep id (from SweepStarted, or the job names: <pipeline>-<sweep>-<variant>-a<attempt>).
        #[arg(long)]
        sweep: String,
        /// The pipeline, if several have sweeps with this id.
        #[arg(long)]
        pipeline: Option<String>,
        /// The stack's artifacts bucket (output ArtifactsBucketName).
        #[arg(long, env = "RETRAIN_ARTIFACTS_BUCKET")]
        artifacts_bucket: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Another training job (e.g. an S3 File-mode run) to compare start-up time with.
        #[arg(long)]
        compare: Option<String>,
    },
    /// Print the stack's domain events (its event log) as a timeline, oldest first.
    #[command(
        after_help = "Examples:\n  retrain events --since 1h\n  retrain events --pipeline churn --since 2d\n  retrain events --sweep 5d41402abc --json\n  retrain events --follow\n\nReads the CloudWatch Logs group that the stack's event-log rule writes (output\nEventLogGroupName). An event published again after a retry shows once."
    )]
    Events {
        /// The stack's event log group (output EventLogGroupName).
        #[arg(long, env = "RETRAIN_EVENT_LOG_GROUP")]
        log_group: String,
        /// Only this pipeline's events (imports name every pipeline they cover).
        #[arg(long)]
        pipeline: Option<String>,
        /// Only this sweep's events.
        #[arg(long)]
        sweep: Option<String>,
        /// How far back: a number and s, m, h or d.
        #[arg(long, default_value = "1h")]
        since: String,
        /// Keep printing new events as they arrive (Ctrl-C stops).
        #[arg(long)]
        follow: bool,
        /// One JSON object per event and line.
        #[arg(long)]
        json: bool,
    },
    /// Print, as JSON, the AWS calls an event would cause: {"actions": [...], "skipped": [...]}.
    #[command(
        after_help = "Examples:\n  retrain plan --config examples/pipelines.yaml --event events/s3-put.json\n  retrain plan --config examples/pipelines.yaml --event events/scheduled-event.json\n  echo '{\"kind\":\"start-sweep\",\"pipeline\":\"churn\"}' | retrain plan --config examples/pipelines.yaml --event -\n\nNever writes to AWS. When a Lustre pipeline has no mount_name, plan reads it with\nfsx:DescribeFileSystems (AWS_REGION / AWS_ENDPOINT_URL apply), and says so when it cannot."
    )]
    Plan {
        #[arg(long)]
        config: PathBuf,
        /// The event file (`-` for standard input): S3/SQS/EventBridge event or a start-sweep request.
        #[arg(long)]
        event: PathBuf,
        /// Event bus name shown in the events:PutEvents actions.
        #[arg(long, default_value = "retrain")]
        bus: String,
        /// Never call AWS, even to look up a mount name.
        #[arg(long)]
        offline: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate { config, json, live: false } => validate(&config, json),
        Command::Validate { config, json, live: true } => validate_live(&config, json),
        Command::Schema { events } => {
            let schema = if events {
                retrain_core::events::detail_schemas()
            } else {
                config::schema()
            };
            say!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Status {
            sweep,
            pipeline,
            artifacts_bucket,
            json,
            compare,
        } => status(&sweep, pipeline.as_deref(), &artifacts_bucket, json, compare),
        Command::Events {
            log_group,
            pipeline,
            sweep,
            since,
            follow,
            json,
        } => events::run(events::Args {
            log_group,
            filter: retrain_core::event_log::Filter { pipeline, sweep_id: sweep },
            since,
            follow,
            json,
        }),
        Command::Plan {
            config,
            event,
            bus,
            offline,
        } => {
            let config = load(&config)?;
            let event = read_event(&event)?;
            let mut ctx = PlanContext {
                event_bus: bus,
                now: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs()),
                ..Default::default()
            };
            let mut result = plan(&config, &event, &ctx);
            if !offline && needs_mount_names(&result) {
                lookup_mount_names(&config, &mut ctx);
                result = plan(&config, &event, &ctx);
            }
            say!("{}", serde_json::to_string_pretty(&result)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(path: &Path) -> Result<config::Config> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    config::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is invalid: {e}\nrun `retrain validate --config {}` for details",
            path.display(),
            path.display()
        )
    })
}

fn read_event(path: &Path) -> Result<serde_json::Value> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read the event from standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn validate(path: &Path, json: bool) -> Result<ExitCode> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match config::parse(&text) {
        Ok(c) => {
            let warnings = retrain_core::budget::warnings(&c);
            if json {
                let mut out = serde_json::json!({"ok": true, "errors": []});
                if !warnings.is_empty() {
                    out["warnings"] = serde_json::json!(warnings);
                }
                say!("{out}");
            } else {
                say!("OK: {} is valid", path.display());
                for p in &c.pipelines {
                    let kind = match p.file_system.kind {
                        FileSystemKind::FsxLustre => "FSx for Lustre",
                        FileSystemKind::Efs => "EFS",
                    };
                    let variants = retrain_core::sweep::expand(p).len();
                    say!(
                        "  {:<24} {kind:<15} {:<22} {variants} variant(s), {} at a time",
                        p.name,
                        p.file_system.id,
                        p.sweep.max_parallel
                    );
                }
                for w in &warnings {
                    say!("warning: {}\n      {}\n      fix: {}", w.path, w.message, w.fix);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            if json {
                say!("{}", serde_json::json!({"ok": false, "errors": errors.0}));
            } else {
                eprintln!("{}: {} error(s)", path.display(), errors.0.len());
                for e in &errors.0 {
                    eprintln!("  {}\n      {}\n      fix: {}", e.path, e.message, e.fix);
                }
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// Preflight of every pipeline against the account: a table (or JSON), exit 1 on any failure.
fn validate_live(path: &Path, json: bool) -> Result<ExitCode> {
    let config = load(path)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let findings = runtime.block_on(async {
        let clients = retrain_aws::adapters::Clients::from_env().await;
        let network = retrain_aws::adapters::network::Network::new(clients.fsx, clients.efs, clients.ec2);
        let capacity = retrain_aws::adapters::capacity::Capacity::new(clients.servicequotas, clients.sagemaker);
        let mut all = Vec::new();
        for p in &config.pipelines {
            let checked = retrain_aws::deps::Preflight::run(&network, &capacity, p)
                .await
                .map_err(|e| anyhow::anyhow!("pipeline {}: {e}", p.name))?;
            all.extend(checked.findings);
        }
        anyhow::Ok(all)
    })?;
    let ok = findings.iter().all(|f| f.ok);
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"ok": ok, "findings": findings}))?
        );
    } else {
        let mut table = comfy_table::Table::new();
        table.set_header(["pipeline", "check", "resource", "result", "fix"]);
        for f in &findings {
            let result = match (f.ok, f.warning) {
                (true, false) => "ok".to_owned(),
                (true, true) => format!("WARN: {}", f.message),
                (false, _) => format!("FAIL: {}", f.message),
            };
            table.add_row([
                f.pipeline.as_str(),
                f.check.as_str(),
                f.resource.as_str(),
                result.as_str(),
                f.fix.as_str(),
            ]);
        }
        say!("{table}");
        let failed = findings.iter().filter(|f| !f.ok).count();
        let warned = findings.iter().filter(|f| f.warning).count();
        if ok && warned > 0 {
            say!(
                "OK with {warned} warning(s): every check passed for {} pipeline(s); the warnings above say what a sweep will skip",
                config.pipelines.len()
            );
        } else if ok {
            say!("OK: every check passed for {} pipeline(s)", config.pipelines.len());
        } else {
            say!("{failed} check(s) failed: nothing would launch for the pipelines above until they are fixed");
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn status(sweep: &str, pipeline: Option<&str>, bucket: &str, json: bool, compare: Option<String>) -> Result<ExitCode> {
    use retrain_aws::adapters::{sagemaker::SageMaker, store::Store};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let clients = retrain_aws::adapters::Clients::from_env().await;
        let store = Store::new(clients.s3.clone(), bucket);
        let sagemaker = SageMaker::new(clients.sagemaker.clone());
        let key = match pipeline {
            Some(p) => retrain_core::sweep::manifest_key(p, sweep),
            None => store
                .list("sweeps/")
                .await?
                .into_iter()
                .find(|k| k.ends_with(&format!("/{sweep}/manifest.json")))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no sweep {sweep} in s3://{bucket}/sweeps/: check the id (SweepStarted.sweep_id) and --artifacts-bucket"
                    )
                })?,
        };
        let manifest: retrain_core::sweep::SweepManifest = store
            .get("sweep manifest", &key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("s3://{bucket}/{key} does not exist"))?;
        let jobs = retrain_aws::handlers::sweep_state::observe(&store, &sagemaker, &manifest).await?;
        let other = match compare {
            Some(name) => {
                let d = sagemaker.describe(&name).await?;
                Some((name, d.timing(false)))
            }
            None => None,
        };
        let mut report = retrain_core::status::sweep_status(&manifest, &jobs, other);
        let suggestions = retrain_aws::handlers::suggestions::recorded(&store, &manifest).await?;
        retrain_core::search_records::annotate(&mut report, &suggestions);
        anyhow::Ok(report)
    })?;
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let secs = |t: Option<&retrain_core::telemetry::JobTiming>, f: fn(&retrain_core::telemetry::JobTiming) -> f64| {
        t.map(|t| format!("{:.0} s", f(t))).unwrap_or_else(|| "-".to_owned())
    };
    let mut table = comfy_table::Table::new();
    let adaptive = report.rows.iter().any(|r| r.suggested_from.is_some());
    let mut header = vec![
        "variant",
        "lane",
        "attempt",
        "status",
        report.metric.as_str(),
        "start-up",
        "download",
        "training",
        "warm pool",
        "job",
    ];
    if adaptive {
        header.extend(["suggested", "from (results + running)"]);
    }
    table.set_header(header);
    for r in &report.rows {
        let t = r.timing.as_ref();
        let mut row = vec![
            r.variant_id.clone(),
            r.lane.to_string(),
            r.attempt.to_string(),
            r.status.clone(),
            r.metric.map(|m| format!("{m:.4}")).unwrap_or_else(|| "-".to_owned()),
            secs(t, |t| t.startup_seconds),
            secs(t, |t| t.download_seconds),
            secs(t, |t| t.training_seconds),
            t.map(|t| if t.warm_pool_reused { "reused" } else { "-" }).unwrap_or("-").to_owned(),
            r.training_job_name.clone(),
        ];
        if adaptive {
            row.push(r.suggested.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
            row.push(
                r.suggested_from
                    .map(|(done, running)| format!("{done} + {running}"))
                    .unwrap_or_default(),
            );
        }
        table.add_row(row);
    }
    say!("sweep {} of {}", report.sweep_id, report.pipeline);
    let data = &report.data_version;
    let imports = if data.imports.is_empty() {
        String::new()
    } else {
        format!(
            ", imports {} ({} object(s))",
            data.imports.join(", "),
            data.objects.unwrap_or_default()
        )
    };
    say!(
        "data as of {}, version {} ({}{imports})",
        data.data_as_of.as_deref().unwrap_or("unknown"),
        data.version,
        data.trigger
    );
    say!("{table}");
    let t = &report.totals;
    let skipped = if t.skipped > 0 {
        format!(", {} skipped for budget", t.skipped)
    } else {
        String::new()
    };
    say!(
        "{} job(s): {} completed, {} failed, {} running{skipped}; start-up {:.0} s, download {:.0} s, training {:.0} s in all; {} warm pool(s) reused",
        t.jobs, t.completed, t.failed, t.running, t.startup_seconds, t.download_seconds, t.training_seconds, t.warm_pools_reused
    );
    if let Some(c) = &report.compare {
        say!(
            "compared with {}: start-up + download {:.0} s there, {:.0} s per job here: {:.0} s saved per job, {:.0} s over the sweep",
            c.training_job_name,
            c.other_before_training_seconds,
            c.sweep_before_training_seconds,
            c.saved_per_job_seconds,
            c.saved_total_seconds
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn needs_mount_names(result: &Plan) -> bool {
    result.skipped.iter().any(|s| s.reason.contains("mount name"))
}

/// Reads the mount names the config leaves out; failures are reported on stderr and left to the plan's skips.
fn lookup_mount_names(config: &config::Config, ctx: &mut PlanContext) {
    let missing: Vec<String> = config
        .pipelines
        .iter()
        .filter(|p| p.file_system.kind == FileSystemKind::FsxLustre && p.file_system.mount_name.is_none())
        .map(|p| p.file_system.id.clone())
        .collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("retrain: cannot look up mount names: {e}");
            return;
        }
    };
    runtime.block_on(async {
        let clients = retrain_aws::adapters::Clients::from_env().await;
        let fsx = retrain_aws::adapters::fsx::Fsx::new(clients.fsx);
        for id in missing {
            let lookup = tokio::time::timeout(std::time::Duration::from_secs(15), fsx.mount_name(&id)).await;
            match lookup {
                Ok(Ok(Some(name))) => {
                    eprintln!("retrain: read mount name {name} of {id} with fsx:DescribeFileSystems");
                    ctx.mount_names.insert(id, name);
                }
                Ok(Ok(None)) => eprintln!("retrain: {id} has no Lustre mount name in DescribeFileSystems; set file_system.mount_name"),
                Ok(Err(e)) => eprintln!("retrain: cannot read the mount name of {id}: {e}"),
                Err(_) => eprintln!("retrain: cannot read the mount name of {id}: fsx:DescribeFileSystems timed out (no AWS access?); set file_system.mount_name"),
            }
        }
    });
}
