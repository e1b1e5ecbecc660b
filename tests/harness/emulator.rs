//! Starts `tests/emulator/retrain_emulator.py` and stops it when dropped.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Emulator {
    child: Child,
    pub endpoint: String,
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python with the emulator's requirements: `RETRAIN_EMULATOR_PYTHON`,
/// else the project's `.venv` (made by `make test`), else `python3`.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("RETRAIN_EMULATOR_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Starts a Python helper that prints `READY <url>` when it serves.
fn spawn_ready(script: &str, args: &[&str]) -> (Child, String) {
    let script = root().join(script);
    let mut child = Command::new(python())
        .arg(&script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (run `make test`, which installs what it needs)",
                script.display()
            )
        });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("helper prints READY");
    let url = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("{} said {line:?} instead of READY <url>", script.display()))
        .to_owned();
    (child, url)
}

/// A loopback proxy that answers a seeded share of calls with throttling, 5xx or a dropped connection.
pub struct FaultProxy {
    child: Child,
    pub endpoint: String,
}

impl FaultProxy {
    pub fn start(target: &str, seed: u64, rate: f64) -> FaultProxy {
        let (child, endpoint) = spawn_ready(
            "tests/faults/fault_proxy.py",
            &["--target", target, "--seed", &seed.to_string(), "--rate", &rate.to_string()],
        );
        FaultProxy { child, endpoint }
    }

    /// `{"forwarded": n, "throttle": n, "500": n, "503": n, "drop": n}`.
    pub fn stats(&self) -> Value {
        let mut response = ureq::get(&format!("{}/_proxy/stats", self.endpoint)).call().expect("proxy stats");
        response.body_mut().read_json().expect("stats JSON")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    pub fn start() -> Emulator {
        let (child, endpoint) = spawn_ready("tests/emulator/retrain_emulator.py", &["--port", "0"]);
        Emulator { child, endpoint }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/_retrain/{path}", self.endpoint)
    }

    /// `GET /_retrain/<path>`.
    pub fn get(&self, path: &str) -> Value {
        let mut response = ureq::get(&self.url(path)).call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        response.body_mut().read_json().unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `POST /_retrain/<path>` with a JSON body.
    pub fn post(&self, path: &str, body: Value) -> Value {
        let mut response = ureq::post(&self.url(path))
            .send_json(&body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        response.body_mut().read_json().unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Ends an FSx task (`SUCCEEDED`, `FAILED`, `CANCELED`).
    pub fn finish_task(&self, task_id: &str, lifecycle: &str) -> Value {
        self.post(
            &format!("fsx/tasks/{task_id}/finish"),
            serde_json::json!({"lifecycle": lifecycle, "message": "emulated failure"}),
        )
    }

    /// Completes a training job with metrics; returns its real-shape state-change event.
    pub fn complete_job(&self, name: &str, metrics: Value) -> Value {
        self.post(&format!("sagemaker/jobs/{name}/complete"), serde_json::json!({"metrics": metrics}))
    }

    /// Completes a training job that billed `billable_seconds`; returns its state-change event.
    pub fn complete_job_billed(&self, name: &str, metrics: Value, billable_seconds: u64) -> Value {
        self.post(
            &format!("sagemaker/jobs/{name}/complete"),
            serde_json::json!({"metrics": metrics, "billable_seconds": billable_seconds}),
        )
    }

    /// Fails a training job with a reason; returns its state-change event.
    pub fn fail_job(&self, name: &str, reason: &str) -> Value {
        self.post(&format!("sagemaker/jobs/{name}/fail"), serde_json::json!({"reason": reason}))
    }

    pub fn tasks(&self) -> Value {
        self.get("fsx/tasks")
    }

    pub fn jobs(&self) -> Value {
        self.get("sagemaker/jobs")
    }

    /// Every PutEvents entry on `bus`.
    pub fn events(&self, bus: &str) -> Vec<Value> {
        self.get(&format!("events?bus={bus}"))["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
