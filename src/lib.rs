//! trialpipe turns the raw per-visit lab exports of a clinical trial into validated,
//! analysis-ready datasets and arm-versus-arm results.
//!
//! The library is organised one module per stage, each with a typed input and output; stages never
//! print. `run` is the only place that knows the order of the stages, the output directory and the
//! manifest; `cli` is the edge that parses arguments, prints and maps results to exit codes.
//! See `docs/architecture.md` for the picture.

pub mod analyze;
pub mod assessments;
pub mod cli;
pub mod criteria;
pub mod derive;
pub mod eligibility;
pub mod exit;
pub mod group;
pub mod ingest;
pub mod inplace;
pub mod pseudonym;
pub mod report;
pub mod response;
pub mod run;
pub mod scores;
pub mod simulate;
pub mod spec;
pub mod stats;
pub mod store;
pub mod timing;
pub mod units;
pub mod validate;
pub mod windows;
