//! Adaptive search: each lane's next variant is suggested from the results
//! recorded so far. Pure: a suggestion is a function of the search section,
//! the trial's position and the history it is given, so a recorded
//! suggestion can be replayed and checked.
//!
//! `random` draws every trial independently. `tpe` is a tree-structured
//! Parzen estimator (Bergstra et al., 2011) as Optuna's default sampler
//! runs it: independent per parameter, random for the first
//! [`STARTUP_TRIALS`] results, then the candidate of [`CANDIDATES`] drawn
//! from the density of the best `gamma(n)` trials that maximises l(x)/g(x).
//! Running trials count as the worst result so far (a constant liar), so
//! lanes that ask together spread out instead of suggesting one point.

use crate::config::Scalar;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Results needed before `tpe` models (as Optuna's `n_startup_trials`).
pub const STARTUP_TRIALS: usize = 10;
/// Candidates drawn from l(x) per parameter (as Optuna's `n_ei_candidates`).
pub const CANDIDATES: usize = 24;
/// Upper bound on `budget`: a suggestion reads the whole history in one listing page.
pub const MAX_BUDGET: u32 = 500;

/// `sweep.search`: variants suggested one at a time instead of a fixed grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// `random` (independent draws) or `tpe` (a tree-structured Parzen estimator).
    pub strategy: Strategy,
    /// Hyperparameter name → its range or choices.
    pub space: BTreeMap<String, Param>,
    /// How many variants the sweep trains.
    pub budget: u32,
    /// Seed of every draw: the same seed and results give the same suggestions.
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Random,
    Tpe,
}

/// One dimension of the search space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Param {
    /// A real number in `[low, high]`; `log: true` searches its logarithm (`low` > 0).
    Float {
        low: f64,
        high: f64,
        #[serde(default)]
        log: bool,
    },
    /// A whole number in `[low, high]`; `log: true` searches its logarithm (`low` ≥ 1).
    Int {
        low: i64,
        high: i64,
        #[serde(default)]
        log: bool,
    },
    /// One of a list of values.
    Categorical { choices: Vec<Scalar> },
}

/// One earlier trial: its point and its loss (smaller is better); `None` while it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub point: BTreeMap<String, Scalar>,
    pub loss: Option<f64>,
}

/// The point of trial `position`, from the trials recorded when it is decided.
/// Failed trials are left out by the caller; running ones have no loss.
pub fn suggest(search: &Search, position: usize, history: &[Trial]) -> BTreeMap<String, Scalar> {
    let mut rng = trial_rng(search.seed, position);
    let finished = history.iter().filter(|t| t.loss.is_some()).count();
    if search.strategy == Strategy::Random || finished < STARTUP_TRIALS {
        return search
            .space
            .iter()
            .map(|(name, p)| (name.clone(), from_unit(p, draw_prior(p, &mut rng))))
            .collect();
    }
    // Constant liar: a running trial counts as the worst finished one.
    let worst = history.iter().filter_map(|t| t.loss).fold(f64::NEG_INFINITY, f64::max);
    let mut ranked: Vec<(&Trial, f64)> = history.iter().map(|t| (t, t.loss.unwrap_or(worst))).collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n_below = gamma(ranked.len());
    let (below, above) = ranked.split_at(n_below);
    search
        .space
        .iter()
        .map(|(name, p)| {
            let coords = |set: &[(&Trial, f64)]| -> Vec<f64> { set.iter().filter_map(|(t, _)| to_unit(p, t.point.get(name)?)).collect() };
            let l = Parzen::fit(p, &coords(below));
            let g = Parzen::fit(p, &coords(above));
            let best = (0..CANDIDATES)
                .map(|_| l.sample(&mut rng))
                .map(|x| (x, l.log_pdf(x) - g.log_pdf(x)))
                .fold(None::<(f64, f64)>, |acc, c| match acc {
                    Some(a) if a.1 >= c.1 => Some(a),
                    _ => Some(c),
                })
                .map_or(0.5, |(x, _)| x);
            (name.clone(), from_unit(p, best))
        })
        .collect()
}

/// Size of the "good" group, as Optuna's default: 10 %, at most 25, at least 1.
pub fn gamma(n: usize) -> usize {
    n.div_ceil(10).clamp(1, 25).min(n.max(1))
}

/// A generator per trial: the seed and the position alone fix its stream, so
/// a trial's draws do not depend on how many draws came before it.
fn trial_rng(seed: u64, position: usize) -> ChaCha8Rng {
    let digest = Sha256::new()
        .chain_update(b"retrain-search")
        .chain_update(seed.to_le_bytes())
        .chain_update((position as u64).to_le_bytes())
        .finalize();
    let mut key = [0u8; 32];
    key.copy_from_slice(&digest);
    ChaCha8Rng::from_seed(key)
}

fn draw_prior(p: &Param, rng: &mut ChaCha8Rng) -> f64 {
    match p {
        Param::Categorical { choices } => rng.random_range(0..choices.len().max(1)) as f64,
        _ => rng.random::<f64>(),
    }
}

/// Numeric parameters live on `[0, 1]` (after the log when asked); a
/// categorical one by its choice's index.
fn to_unit(p: &Param, value: &Scalar) -> Option<f64> {
    let number = |v: &Scalar| match v {
        Scalar::Integer(i) => Some(*i as f64),
        Scalar::Float(f) => Some(*f),
        Scalar::String(s) => s.parse().ok(),
        Scalar::Bool(_) => None,
    };
    let x = match p {
        Param::Float { low, high, log } => unit_of(number(value)?, *low, *high, *log),
        // Whole numbers own the interval of width 1 around them.
        Param::Int { low, high, log } => {
            let (lo, hi) = int_bounds(*low, *high, *log);
            unit_of(
                if *log {
                    number(value)?.max(f64::MIN_POSITIVE)
                } else {
                    number(value)?
                },
                lo,
                hi,
                *log,
            )
        }
        Param::Categorical { choices } => {
            return choices
                .iter()
                .position(|c| c == value || c.to_hyperparameter() == value.to_hyperparameter())
                .map(|i| i as f64)
        }
    };
    x.is_finite().then_some(x.clamp(0.0, 1.0))
}

fn int_bounds(low: i64, high: i64, log: bool) -> (f64, f64) {
    if log {
        ((low as f64 - 0.5).max(0.5), high as f64 + 0.5)
    } else {
        (low as f64 - 0.5, high as f64 + 0.5)
    }
}

fn unit_of(x: f64, low: f64, high: f64, log: bool) -> f64 {
    if log {
        (x.ln() - low.ln()) / (high.ln() - low.ln())
    } else {
        (x - low) / (high - low)
    }
}

fn value_of(u: f64, low: f64, high: f64, log: bool) -> f64 {
    let u = u.clamp(0.0, 1.0);
    if log {
        (low.ln() + u * (high.ln() - low.ln())).exp()
    } else {
        low + u * (high - low)
    }
}

fn from_unit(p: &Param, u: f64) -> Scalar {
    match p {
        Param::Float { low, high, log } => {
            if high <= low {
                return Scalar::Float(*low);
            }
            Scalar::Float(value_of(u, *low, *high, *log).clamp(*low, *high))
        }
        Param::Int { low, high, log } => {
            let (lo, hi) = int_bounds(*low, *high, *log);
            Scalar::Integer((value_of(u, lo, hi, *log).round() as i64).clamp(*low, *high))
        }
        Param::Categorical { choices } => {
            let i = (u as usize).min(choices.len().saturating_sub(1));
            choices.get(i).cloned().unwrap_or(Scalar::Bool(false))
        }
    }
}

/// A Parzen estimator of one parameter over a set of trials, with a prior.
#[derive(Debug, Clone)]
enum Parzen {
    /// Truncated Gaussians on `[0, 1]`, equal weights, the prior `N(0.5, 1)` among them.
    Numeric { mus: Vec<f64>, sigmas: Vec<f64> },
    /// Smoothed frequencies of the choices.
    Categorical { weights: Vec<f64> },
}

impl Parzen {
    fn fit(p: &Param, coords: &[f64]) -> Parzen {
        match p {
            Param::Categorical { choices } => {
                // As Optuna: one kernel per observation (its choice plus 1/kernels on
                // every choice, normalised) and a uniform prior kernel, mixed equally.
                let k = choices.len().max(1);
                let kernels = coords.len() as f64 + 1.0;
                let base = 1.0 / kernels;
                let row = 1.0 + k as f64 * base;
                let mut weights = vec![1.0 / k as f64; k];
                for &c in coords {
                    for (i, w) in weights.iter_mut().enumerate() {
                        *w += (base + f64::from(u8::from(i == (c as usize).min(k - 1)))) / row;
                    }
                }
                Parzen::Categorical {
                    weights: weights.into_iter().map(|w| w / kernels).collect(),
                }
            }
            _ => {
                let mut mus: Vec<f64> = coords.to_vec();
                mus.push(0.5);
                mus.sort_by(f64::total_cmp);
                let n = mus.len();
                // Each kernel as wide as its farther neighbour (the ends count as neighbours).
                let min_sigma = 1.0 / (1.0 + n as f64).min(100.0);
                let mut sigmas: Vec<f64> = (0..n)
                    .map(|i| {
                        let left = mus[i] - if i == 0 { 0.0 } else { mus[i - 1] };
                        let right = if i + 1 == n { 1.0 } else { mus[i + 1] } - mus[i];
                        left.max(right).clamp(min_sigma, 1.0)
                    })
                    .collect();
                // The prior keeps its full width.
                let prior = mus.iter().position(|&m| m == 0.5).unwrap_or(0);
                sigmas[prior] = 1.0;
                Parzen::Numeric { mus, sigmas }
            }
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        match self {
            Parzen::Categorical { weights } => {
                let r: f64 = rng.random();
                let mut acc = 0.0;
                for (i, w) in weights.iter().enumerate() {
                    acc += w;
                    if r < acc {
                        return i as f64;
                    }
                }
                (weights.len() - 1) as f64
            }
            Parzen::Numeric { mus, sigmas } => {
                let i = rng.random_range(0..mus.len());
                // Rejection keeps the truncated shape; a kernel almost wholly outside falls back to its clamp.
                let normal = Normal::new(mus[i], sigmas[i]).unwrap_or_else(|_| Normal::new(0.5, 1.0).expect("valid"));
                for _ in 0..64 {
                    let x = normal.sample(rng);
                    if (0.0..=1.0).contains(&x) {
                        return x;
                    }
                }
                mus[i].clamp(0.0, 1.0)
            }
        }
    }

    fn log_pdf(&self, x: f64) -> f64 {
        match self {
            Parzen::Categorical { weights } => weights.get(x as usize).copied().unwrap_or(f64::MIN_POSITIVE).ln(),
            Parzen::Numeric { mus, sigmas } => {
                let n = mus.len() as f64;
                let density: f64 = mus
                    .iter()
                    .zip(sigmas)
                    .map(|(&m, &s)| {
                        let mass = phi((1.0 - m) / s) - phi((0.0 - m) / s);
                        let z = (x - m) / s;
                        (-0.5 * z * z).exp() / (s * (2.0 * std::f64::consts::PI).sqrt() * mass.max(1e-12))
                    })
                    .sum::<f64>()
                    / n;
                density.max(f64::MIN_POSITIVE).ln()
            }
        }
    }
}

/// The standard normal distribution function.
fn phi(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' `erfcc`, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The hyperparameter strings SageMaker receives for a suggested point.
pub fn hyperparameters(point: &BTreeMap<String, Scalar>) -> BTreeMap<String, String> {
    point.iter().map(|(k, v)| (k.clone(), v.to_hyperparameter())).collect()
}

#[cfg(test)]
mod tests;
