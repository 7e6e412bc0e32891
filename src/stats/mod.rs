//! Pure statistics for `trialpipe`: descriptive summaries, t-tests, Wilcoxon
//! tests with Hodges-Lehmann estimates, and multiplicity adjustment, each
//! reproducing the R function named in its documentation.
//!
//! Everything here is a pure function of its numeric inputs: no I/O, no
//! printing, no knowledge of clinical datasets. Degenerate inputs return a
//! [`StatsError`] rather than `NaN` or a panic. Methods, formulas and
//! references are in `docs/methods.md`.

mod ancova;
mod common;
mod contingency;
mod descriptive;
mod discrete;
mod error;
mod exact;
mod linalg;
pub mod mmrm;
mod multiplicity;
mod rank;
mod survival;
pub mod tolerance;
mod ttest;
mod wilcoxon;
mod zeroin;

pub use ancova::{
    Ancova, AncovaModel, Coefficient, Covariate, Factor, LsMean, LsMeanDifference, ancova,
};
pub use common::{Alternative, Ci, TestResult};
pub use contingency::{
    ChiSquareTest, ContinuityCorrection, FisherExact, MantelHaenszel, OddsRatio, Proportion,
    ProportionCi, RiskDifference, Table2x2, ZeroCells, binom_test, chi_square_2x2, fisher_exact,
    mantel_haenszel, odds_ratio, proportion, risk_difference,
};
pub use descriptive::{
    Descriptive, QuantileType, descriptive, descriptive_with, median, quantile, quantiles,
};
pub use error::StatsError;
pub use multiplicity::{Adjustment, p_adjust};
pub use survival::{
    BeyondFollowUp, CoxFit, CoxOptions, CoxTerm, KaplanMeier, KmConfType, KmLandmark, KmOptions,
    KmRow, LogRank, LogRankGroup, MedianSurvival, Ties, TimeFix, cox_ph, kaplan_meier,
    kaplan_meier_by_group, log_rank,
};
pub use ttest::{VarianceAssumption, t_test_one_sample, t_test_paired, t_test_two_sample};
pub use wilcoxon::{
    WilcoxonMethod, wilcoxon_paired, wilcoxon_rank_sum, wilcoxon_rank_sum_with,
    wilcoxon_signed_rank, wilcoxon_signed_rank_with,
};
