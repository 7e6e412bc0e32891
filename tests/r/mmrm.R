# Live R oracle for tests/mmrm_vs_sas.rs: generalized least squares fits of the
# MMRM FEV1 ~ RACE + SEX + ARMCD * AVISIT with nlme::gls (REML) for the
# covariance structures nlme can express:
#   UN   corSymm      + varIdent by visit
#   CS   corCompSymm
#   CSH  corCompSymm  + varIdent by visit
#   AR1  corAR1 on the visit number
#   ARH1 corAR1       + varIdent by visit
# Writes one row per (case, quantity): coefficients (estimate, se), the REML
# log-likelihood, and the visit covariance matrix of a subject observed at
# every visit ("Sigma[i,j]", 1-based visit indices).
#
# Usage: Rscript tests/r/mmrm.R <fev_data.csv> <out.csv>
# Needs the Debian packages r-base-core and r-cran-nlme.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2L) {
  stop("usage: Rscript mmrm.R <fev_data.csv> <out.csv>")
}
if (!requireNamespace("nlme", quietly = TRUE)) {
  stop("R package 'nlme' is not installed (Debian: r-cran-nlme)")
}
suppressPackageStartupMessages(library(nlme))

dat <- read.csv(args[[1]], stringsAsFactors = FALSE, na.strings = "NA")
dat$USUBJID <- factor(dat$USUBJID)
dat$AVISIT <- factor(dat$AVISIT, levels = c("VIS1", "VIS2", "VIS3", "VIS4"))
dat$ARMCD <- factor(dat$ARMCD, levels = c("PBO", "TRT"))
dat$RACE <- factor(dat$RACE, levels = c("Asian", "Black or African American", "White"))
dat$SEX <- factor(dat$SEX, levels = c("Male", "Female"))
dat$VISITNUM <- as.integer(dat$AVISIT)
dat <- dat[order(dat$USUBJID, dat$AVISIT), ]

form <- FEV1 ~ RACE + SEX + ARMCD * AVISIT
het <- varIdent(form = ~ 1 | AVISIT)

# optim (BFGS) as nlme's strictest setting; corAR1 with visit gaps makes optim
# step into a non-invertible AR coefficient, so those cases fall back to nlminb.
fit_case <- function(correlation, weights) {
  fit_with <- function(opt) {
    ctrl <- glsControl(tolerance = 1e-12, msTol = 1e-12, opt = opt,
                       maxIter = 500, msMaxIter = 500)
    gls(form, data = dat, correlation = correlation, weights = weights,
        method = "REML", control = ctrl, na.action = na.omit)
  }
  fit <- tryCatch(fit_with("optim"), error = function(e) NULL)
  if (is.null(fit)) fit <- fit_with("nlminb")
  fit
}

cases <- list(
  UN = function() fit_case(corSymm(form = ~ VISITNUM | USUBJID), het),
  CS = function() fit_case(corCompSymm(form = ~ 1 | USUBJID), NULL),
  CSH = function() fit_case(corCompSymm(form = ~ 1 | USUBJID), het),
  AR1 = function() fit_case(corAR1(form = ~ VISITNUM | USUBJID), NULL),
  ARH1 = function() fit_case(corAR1(form = ~ VISITNUM | USUBJID), het)
)

complete <- names(which(tapply(!is.na(dat$FEV1), dat$USUBJID, sum) == 4L))[1]

fmt <- function(x) format(x, digits = 17)
rows <- list()
for (case in names(cases)) {
  fit <- cases[[case]]()
  est <- coef(fit)
  se <- sqrt(diag(vcov(fit)))
  rows[[length(rows) + 1]] <- data.frame(
    case = case, quantity = names(est), estimate = fmt(unname(est)),
    se = fmt(unname(se)), stringsAsFactors = FALSE
  )
  rows[[length(rows) + 1]] <- data.frame(
    case = case, quantity = "logLik", estimate = fmt(as.numeric(logLik(fit))),
    se = "NA", stringsAsFactors = FALSE
  )
  sigma <- unclass(getVarCov(fit, individual = complete))
  idx <- expand.grid(i = 1:4, j = 1:4)
  rows[[length(rows) + 1]] <- data.frame(
    case = case, quantity = sprintf("Sigma[%d,%d]", idx$i, idx$j),
    estimate = fmt(sigma[cbind(idx$i, idx$j)]), se = "NA", stringsAsFactors = FALSE
  )
}
out <- do.call(rbind, rows)
write.csv(out, args[[2]], row.names = FALSE, quote = TRUE)
