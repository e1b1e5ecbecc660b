//! `make bench` (search item): the sampler behind a line protocol, so the
//! benchmark drives `random`, `tpe` and Optuna with the same objectives.
//! Each stdin line is `{"search": <sweep.search>, "position": n,
//! "history": [{"point": {...}, "loss": x | null}]}`; each stdout line the
//! suggested point.

use retrain_core::config::Scalar;
use retrain_core::search::{suggest, Search, Trial};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

#[derive(Deserialize)]
struct Ask {
    search: Search,
    position: usize,
    history: Vec<Told>,
}

#[derive(Deserialize)]
struct Told {
    point: BTreeMap<String, Scalar>,
    loss: Option<f64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let ask: Ask = serde_json::from_str(&line?)?;
        let history: Vec<Trial> = ask
            .history
            .into_iter()
            .map(|t| Trial {
                point: t.point,
                loss: t.loss,
            })
            .collect();
        let point = suggest(&ask.search, ask.position, &history);
        writeln!(stdout, "{}", serde_json::to_string(&point)?)?;
        stdout.flush()?;
    }
    Ok(())
}
