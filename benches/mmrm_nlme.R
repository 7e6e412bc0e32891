# R side of the MMRM benchmark (benches/mmrm.sh, `make bench-mmrm`): fits the model the
# analyze stage fits, CHG ~ BASE + AVISIT + ARM + AVISIT:ARM with unstructured covariance by
# REML, as nlme::gls with corSymm (general correlation) and varIdent by visit (a variance per
# visit), on a file written by `mmrm_bench generate`; then the same fit refined with optim from
# that estimate (see 2. below).
#
# Writes one CSV row per fit ("nlminb", "refined") and quantity: the coefficients (estimate, se),
# logLik, the visit covariance matrix of a subject observed at every visit ("Sigma[i,j]"); and
# the wall times (elapsed seconds from system.time) of read.csv, of the standard gls call and of
# the refinement, as fit "time", quantities "read_seconds", "fit_seconds", "refine_seconds".
#
# Usage: Rscript benches/mmrm_nlme.R <data.csv> <out.csv>
# Needs the Debian packages r-base-core and r-cran-nlme.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2L) {
  stop("usage: Rscript mmrm_nlme.R <data.csv> <out.csv>")
}
if (!requireNamespace("nlme", quietly = TRUE)) {
  stop("R package 'nlme' is not installed (Debian: r-cran-nlme)")
}
suppressPackageStartupMessages(library(nlme))

read_time <- system.time({
  dat <- read.csv(args[[1]], stringsAsFactors = FALSE)
  dat$AVISIT <- factor(dat$AVISIT, levels = c("VIS1", "VIS2", "VIS3"))
  dat$ARM <- factor(dat$ARM, levels = c("PBO", "TRT"))
})[["elapsed"]]

# 1. The standard call: gls's default optimizer (nlminb). Its time is the one the speed goal
#    compares with. gls hands nlminb only iter.max, not msTol, so nlminb stops at its default
#    relative tolerance (1e-10 of -logLik), a little short of the REML optimum.
ctrl <- glsControl(tolerance = 1e-12, msTol = 1e-12, maxIter = 500, msMaxIter = 500)
form <- CHG ~ BASE + AVISIT * ARM
fit_time <- system.time({
  fit <- gls(form, data = dat,
             correlation = corSymm(form = ~ AVISITN | USUBJID),
             weights = varIdent(form = ~ 1 | AVISIT),
             method = "REML", control = ctrl)
})[["elapsed"]]

# 2. Refinement: optim (BFGS, reltol = msTol = 1e-14) started at the nlminb estimate, so that
#    the comparison of estimates measures the two implementations rather than nlminb's stopping
#    rule. (optim from nlme's own starting values fails on this data with an error in
#    recalc.corSymm.) When it fails, only the nlminb fit is reported.
ctrl2 <- glsControl(tolerance = 1e-12, msTol = 1e-14, maxIter = 500, msMaxIter = 500,
                    opt = "optim")
cs <- coef(fit$modelStruct$corStruct, unconstrained = FALSE)
vi <- coef(fit$modelStruct$varStruct, unconstrained = FALSE)
refine_time <- system.time({
  refined <- tryCatch(
    gls(form, data = dat,
        correlation = corSymm(value = cs, form = ~ AVISITN | USUBJID),
        weights = varIdent(value = vi, form = ~ 1 | AVISIT),
        method = "REML", control = ctrl2),
    error = function(e) NULL)
})[["elapsed"]]

fmt <- function(x) format(x, digits = 17)
complete <- names(which(table(dat$USUBJID) == 3L))[1]
idx <- expand.grid(i = 1:3, j = 1:3)
rows_of <- function(f, label) {
  est <- coef(f)
  se <- sqrt(diag(vcov(f)))
  sigma <- unclass(getVarCov(f, individual = complete))
  rbind(
    data.frame(fit = label, quantity = names(est), estimate = fmt(unname(est)),
               se = fmt(unname(se))),
    data.frame(fit = label, quantity = "logLik", estimate = fmt(as.numeric(logLik(f))),
               se = "NA"),
    data.frame(fit = label, quantity = sprintf("Sigma[%d,%d]", idx$i, idx$j),
               estimate = fmt(sigma[cbind(idx$i, idx$j)]), se = "NA")
  )
}
out <- rbind(
  rows_of(fit, "nlminb"),
  if (!is.null(refined)) rows_of(refined, "refined"),
  data.frame(fit = "time", quantity = c("read_seconds", "fit_seconds", "refine_seconds"),
             estimate = fmt(c(read_time, fit_time, refine_time)), se = "NA")
)
write.csv(out, args[[2]], row.names = FALSE, quote = TRUE)
