//! Newton-Raphson on the unconstrained covariance parameters with the
//! analytic Hessian, Levenberg damping where the Hessian is not positive
//! definite, a step-length cap and an Armijo backtracking line search.

use super::likelihood::{Eval, Order, Problem};
use super::linalg::{cholesky_in_place, cholesky_inverse};

/// Outcome of one optimization run.
#[derive(Debug, Clone)]
pub(crate) struct Optimum {
    pub theta: Vec<f64>,
    /// Evaluation at `theta` with gradient and Hessian.
    pub eval: Eval,
    pub iterations: usize,
    pub evaluations: usize,
    pub converged: bool,
    /// Newton decrement `gᵀH⁻¹g` at `theta` (infinite when `H` is not positive definite).
    pub decrement: f64,
    pub message: String,
}

/// Largest change of any parameter in one step (the parameters are logs of
/// standard deviations, Cholesky entries and Fisher-z-like correlations).
const MAX_STEP: f64 = 2.0;

/// Solves `(H + μI) δ = -g`, raising `μ` from 0 until the matrix is
/// positive definite. Returns `δ` and `μ`.
fn damped_step(h: &[f64], g: &[f64]) -> Option<(Vec<f64>, f64)> {
    let k = g.len();
    let scale = (0..k).map(|i| h[i * k + i].abs()).fold(1e-12, f64::max);
    let mut mu = 0.0;
    for _ in 0..60 {
        let mut a = h.to_vec();
        for i in 0..k {
            a[i * k + i] += mu;
        }
        if cholesky_in_place(&mut a, k).is_ok() {
            let inv = cholesky_inverse(&a, k);
            let delta: Vec<f64> = (0..k)
                .map(|i| -(0..k).map(|j| inv[i * k + j] * g[j]).sum::<f64>())
                .collect();
            if delta.iter().all(|d| d.is_finite()) {
                return Some((delta, mu));
            }
        }
        mu = if mu == 0.0 { 1e-8 * scale } else { mu * 10.0 };
    }
    None
}

/// Newton decrement `gᵀH⁻¹g` of an evaluation with Hessian; infinite when
/// the Hessian is not positive definite.
pub(crate) fn newton_decrement(eval: &Eval) -> f64 {
    match damped_step(&eval.hessian, &eval.gradient) {
        Some((d, 0.0)) => -eval
            .gradient
            .iter()
            .zip(&d)
            .map(|(g, x)| g * x)
            .sum::<f64>(),
        _ => f64::INFINITY,
    }
}

/// Minimizes `-2 log L` from `theta0`.
pub(crate) fn newton(
    problem: &Problem,
    theta0: &[f64],
    max_iterations: usize,
    tolerance: f64,
) -> Result<Optimum, String> {
    let mut theta = theta0.to_vec();
    let mut evaluations = 1;
    let mut cur = problem.evaluate(&theta, Order::Hessian).ok_or_else(|| {
        "covariance matrix not positive definite at the starting values".to_string()
    })?;
    for iteration in 0..=max_iterations {
        let (delta, mu) = damped_step(&cur.hessian, &cur.gradient)
            .ok_or_else(|| "Newton system could not be solved".to_string())?;
        let slope: f64 = cur.gradient.iter().zip(&delta).map(|(g, d)| g * d).sum();
        let decrement = -slope;
        let threshold = tolerance * (1.0 + cur.value.abs());
        if mu == 0.0 && decrement <= threshold {
            return Ok(Optimum {
                theta,
                eval: cur,
                iterations: iteration,
                evaluations,
                converged: true,
                decrement,
                message: format!(
                    "converged: Newton decrement gᵀH⁻¹g = {decrement:.3e} ≤ {threshold:.3e}"
                ),
            });
        }
        if iteration == max_iterations {
            break;
        }
        let biggest = delta.iter().fold(0.0_f64, |m, d| m.max(d.abs()));
        let cap = if biggest > MAX_STEP {
            MAX_STEP / biggest
        } else {
            1.0
        };
        let mut step = cap;
        let mut accepted: Option<(Vec<f64>, f64)> = None;
        for _ in 0..50 {
            let trial: Vec<f64> = theta
                .iter()
                .zip(&delta)
                .map(|(t, d)| t + step * d)
                .collect();
            evaluations += 1;
            if let Some(e) = problem.evaluate(&trial, Order::Value)
                && e.value <= cur.value + 1e-4 * step * slope
            {
                accepted = Some((trial, e.value));
                break;
            }
            step *= 0.5;
        }
        match accepted {
            Some((trial, _)) => {
                theta = trial;
                evaluations += 1;
                cur = problem
                    .evaluate(&theta, Order::Hessian)
                    .ok_or_else(|| "evaluation failed at an accepted point".to_string())?;
            }
            None => {
                // No decrease along a descent direction: at the limit of
                // floating-point precision if the decrement is tiny.
                if mu == 0.0 && decrement <= 1e-6 * (1.0 + cur.value.abs()) {
                    return Ok(Optimum {
                        theta,
                        eval: cur,
                        iterations: iteration,
                        evaluations,
                        converged: true,
                        decrement,
                        message: format!(
                            "converged: no further decrease at floating-point precision \
                             (Newton decrement {decrement:.3e})"
                        ),
                    });
                }
                return Err(format!(
                    "line search failed at iteration {iteration} (Newton decrement {decrement:.3e})"
                ));
            }
        }
    }
    let decrement = newton_decrement(&cur);
    Ok(Optimum {
        theta,
        eval: cur,
        iterations: max_iterations,
        evaluations,
        converged: false,
        decrement,
        message: format!("iteration limit {max_iterations} reached"),
    })
}
