//! Pure statistics for `trialpipe`: descriptive summaries, t-tests, Wilcoxon
//! tests with Hodges-Lehmann estimates, and multiplicity adjustment, each
//! reproducing the R function named in its documentation.
//!
//! Everything here is a pure function of its numeric inputs: no I/O, no
//! printing, no knowledge of clinical datasets. Degenerate inputs return a
//! [`StatsError`] rather than `NaN` or a panic. Methods, formulas and
//! references are in `docs/methods.md`.

mod common;
mod descriptive;
mod error;
mod exact;
mod multiplicity;
mod rank;
pub mod tolerance;
mod ttest;
mod wilcoxon;
mod zeroin;

pub use common::{Alternative, Ci, TestResult};
pub use descriptive::{
    Descriptive, QuantileType, descriptive, descriptive_with, median, quantile, quantiles,
};
pub use error::StatsError;
pub use multiplicity::{Adjustment, p_adjust};
pub use ttest::{VarianceAssumption, t_test_one_sample, t_test_paired, t_test_two_sample};
pub use wilcoxon::{WilcoxonMethod, wilcoxon_paired, wilcoxon_rank_sum, wilcoxon_signed_rank};
