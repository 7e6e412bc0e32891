//! Exit codes, the contract with `make` and cron (documented in `docs/exit-codes.md`).
//!
//! Cron users branch on these numbers; never renumber one, only add.

/// Success: every stage ran and no finding reached warning level.
pub const OK: i32 = 0;
/// Success, but findings at warning level were reported.
pub const WARNINGS: i32 = 1;
/// The command line was wrong (clap's own code for usage errors).
pub const USAGE: i32 = 2;
/// Error findings crossed the pipeline's threshold (`validation.max_error_percent`).
pub const DATA_ERRORS: i32 = 3;
/// The pipeline file or an input file is unusable (invalid, missing, unreadable).
pub const INVALID_INPUT: i32 = 4;
/// Another run holds the output directory's lock.
pub const LOCKED: i32 = 5;
/// Writing outputs failed (disk full, permissions).
pub const OUTPUT_FAILED: i32 = 6;
/// A bug in trialpipe: please report it with the command and the log.
pub const INTERNAL: i32 = 70;
