# R side of the MMRM benchmark (benches/mmrm.sh, `make bench-mmrm`): fits the model the
# analyze stage fits, CHG ~ BASE + AVISIT + ARM + AVISIT:ARM with unstructured covariance by
# REML, as nlme::gls with corSymm (general correlation) and varIdent by visit (a variance per
# visit), on a file written by `mmrm_bench generate`. Tight convergence control so that the
# comparison of estimates measures the two implementations, not nlme's default tolerance.
#
# Writes one CSV row per quantity: the coefficients (estimate, se), logLik, the visit covariance
# matrix of a subject observed at every visit ("Sigma[i,j]"), and the wall times (elapsed
# seconds of read.csv and of gls, from system.time) as "read_seconds" and "fit_seconds".
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

ctrl <- glsControl(tolerance = 1e-12, msTol = 1e-12, maxIter = 500, msMaxIter = 500)
fit_time <- system.time({
  fit <- gls(CHG ~ BASE + AVISIT * ARM, data = dat,
             correlation = corSymm(form = ~ AVISITN | USUBJID),
             weights = varIdent(form = ~ 1 | AVISIT),
             method = "REML", control = ctrl)
})[["elapsed"]]

fmt <- function(x) format(x, digits = 17)
est <- coef(fit)
se <- sqrt(diag(vcov(fit)))
complete <- names(which(table(dat$USUBJID) == 3L))[1]
sigma <- unclass(getVarCov(fit, individual = complete))
idx <- expand.grid(i = 1:3, j = 1:3)
out <- rbind(
  data.frame(quantity = names(est), estimate = fmt(unname(est)), se = fmt(unname(se))),
  data.frame(quantity = "logLik", estimate = fmt(as.numeric(logLik(fit))), se = "NA"),
  data.frame(quantity = sprintf("Sigma[%d,%d]", idx$i, idx$j),
             estimate = fmt(sigma[cbind(idx$i, idx$j)]), se = "NA"),
  data.frame(quantity = c("read_seconds", "fit_seconds"),
             estimate = fmt(c(read_time, fit_time)), se = "NA")
)
write.csv(out, args[[2]], row.names = FALSE, quote = TRUE)
