//! Error type shared by every routine in [`crate::stats`].
//!
//! The statistics module never returns `NaN` and never panics on bad data:
//! every degenerate input maps to one variant of [`StatsError`], so callers
//! can tell "not computable" apart from a genuine result.

use thiserror::Error;

/// Why a statistic could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StatsError {
    /// No (non-missing) observations were supplied.
    #[error("{what}: no observations")]
    EmptyInput {
        /// Which input was empty (e.g. `"x"`, `"y"`, `"p-values"`).
        what: &'static str,
    },

    /// An input contained `NaN` or an infinity where only finite values are allowed.
    #[error("{what}: non-finite value {value} at index {index}")]
    NonFiniteInput {
        /// Which input held the value.
        what: &'static str,
        /// Zero-based position of the first offending value.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// Fewer observations than the method needs.
    #[error("{what}: {n} observation(s), at least {required} required")]
    TooFewObservations {
        /// Which input was too small.
        what: &'static str,
        /// Observations supplied.
        n: usize,
        /// Observations required.
        required: usize,
    },

    /// The data have (essentially) zero variance, so the test statistic is undefined
    /// (R: "data are essentially constant").
    #[error("{what}: data are essentially constant (zero variance)")]
    ZeroVariance {
        /// Which input was constant.
        what: &'static str,
    },

    /// All observations are tied (or, for the signed-rank test, all equal / all zero),
    /// so the rank statistic has no variance and no confidence interval exists.
    #[error("{what}: all observations are tied")]
    AllTied {
        /// Which input was tied.
        what: &'static str,
    },

    /// Paired inputs of different lengths.
    #[error("paired inputs differ in length: {x_len} vs {y_len}")]
    LengthMismatch {
        /// Length of the first input.
        x_len: usize,
        /// Length of the second input.
        y_len: usize,
    },

    /// A confidence level outside the open interval (0, 1).
    #[error("confidence level {0} is not strictly between 0 and 1")]
    InvalidConfLevel(f64),

    /// A probability outside [0, 1] (quantile probabilities, p-values to adjust).
    #[error("{what}: {value} at index {index} is not a probability in [0, 1]")]
    InvalidProbability {
        /// Which input held the value.
        what: &'static str,
        /// Zero-based position of the offending value.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// An exact Wilcoxon computation was requested but is not valid for these data
    /// (ties or zero differences present); R silently falls back to the normal
    /// approximation here, this module asks the caller to choose explicitly.
    #[error("exact Wilcoxon distribution requested but the data contain {reason}")]
    ExactNotAvailable {
        /// `"ties"` or `"zeros"`.
        reason: &'static str,
    },

    /// An exact Wilcoxon computation was requested for samples too large to enumerate.
    #[error("exact Wilcoxon distribution requested for too large a sample ({detail})")]
    ExactTooLarge {
        /// Sizes involved and the limit.
        detail: String,
    },

    /// The root finder behind a Hodges-Lehmann estimate or interval did not converge
    /// or was given an interval without a sign change.
    #[error("root finding failed: {0}")]
    RootFinding(&'static str),

    /// An input value outside the domain the method accepts (a negative
    /// survival time, a count larger than its total, a factor code without a
    /// level, a non-positive convergence tolerance).
    #[error("{what}: {reason}")]
    InvalidInput {
        /// Which input was invalid.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A level of a grouping factor has no observations.
    #[error("{what}: level {level} has no observations")]
    EmptyGroup {
        /// Which factor.
        what: &'static str,
        /// Zero-based level code.
        level: usize,
    },

    /// No events where the method needs at least one (all observations
    /// censored, or no events in one arm so the hazard ratio is infinite).
    #[error("{what}: no events")]
    NoEvents {
        /// Which data (e.g. `"all groups"`, `"group 1"`).
        what: String,
    },

    /// A design or information matrix is singular (linearly dependent
    /// columns, a factor level confounded with another term).
    #[error("{what}: matrix is singular")]
    Singular {
        /// Which matrix.
        what: &'static str,
    },

    /// The statistic is not defined for these data (an odds ratio with a zero
    /// cell, a chi-square test with an empty margin, a zero variance).
    #[error("{what} is undefined: {reason}")]
    Undefined {
        /// Which statistic.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },

    /// A time was requested beyond the last follow-up time of a survival curve.
    #[error("time {time} is beyond the last follow-up time {last}")]
    BeyondFollowUp {
        /// The requested time.
        time: f64,
        /// The curve's last time.
        last: f64,
    },

    /// An iterative fit stopped without meeting its convergence criterion,
    /// or met it where the Hessian is not positive definite.
    #[error("{what} did not converge: {detail}")]
    NotConverged {
        /// Which fit (e.g. `"MMRM (UN covariance)"`).
        what: &'static str,
        /// What happened.
        detail: String,
    },
}
