#!/usr/bin/env Rscript
# R oracle for trialpipe's `src/stats` module (base R only).
#
# Usage: Rscript tests/r/basic_stats.R <fev_data.csv> <out.csv>
#
# Writes one row per (case, quantity) with the value printed by
# format(x, digits = 17). tests/stats_vs_r.rs recomputes every case with the
# Rust functions and compares. Case definitions here and there must match.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2L) {
  stop("usage: Rscript basic_stats.R <fev_data.csv> <out.csv>")
}
d <- read.csv(args[1L], stringsAsFactors = FALSE, na.strings = "NA")
stopifnot(all(c("USUBJID", "AVISIT", "ARMCD", "FEV1", "FEV1_BL") %in% names(d)))

out <- new.env()
out$case <- character()
out$quantity <- character()
out$value <- character()

add <- function(case, quantity, value) {
  stopifnot(length(value) == 1L)
  out$case <- c(out$case, case)
  out$quantity <- c(out$quantity, quantity)
  out$value <- c(out$value, format(as.numeric(value), digits = 17))
}

# t.test / wilcox.test results. For two-sample t-tests the estimate is
# mean(x) - mean(y); the interval's (possibly lowered) level is reported.
add_htest <- function(case, h) {
  add(case, "statistic", unname(h$statistic))
  add(case, "p_value", h$p.value)
  if (!is.null(h$parameter)) add(case, "df", unname(h$parameter))
  if (!is.null(h$stderr)) add(case, "se", h$stderr)
  est <- unname(h$estimate)
  if (length(est) == 2L) est <- est[1L] - est[2L]
  add(case, "estimate", est)
  add(case, "ci_lower", h$conf.int[1L])
  add(case, "ci_upper", h$conf.int[2L])
  add(case, "ci_level", attr(h$conf.int, "conf.level"))
  if (grepl("Wilcoxon", h$method)) {
    add(case, "exact", as.numeric(grepl("exact", h$method)))
  }
}

# wilcox.test warns about ties, zeros and unachievable levels; the values
# are what we compare, so the warnings are silenced.
wt <- function(...) suppressWarnings(wilcox.test(..., conf.int = TRUE))

rows_of <- function(v, arm) d[d$AVISIT == v & d$ARMCD == arm, ]
fev_nonmissing <- function(v, arm) {
  s <- rows_of(v, arm)$FEV1
  s[!is.na(s)]
}
# complete (FEV1, FEV1_BL) pairs, file order
pairs_of <- function(v, arm) {
  s <- rows_of(v, arm)
  ok <- !is.na(s$FEV1) & !is.na(s$FEV1_BL)
  list(post = s$FEV1[ok], base = s$FEV1_BL[ok])
}

visits <- c("VIS1", "VIS2", "VIS3", "VIS4")
arms <- c("TRT", "PBO")
probs <- c(0, 0.05, 0.25, 0.5, 0.75, 0.95, 1)

welch_p <- numeric()
for (v in visits) {
  x <- fev_nonmissing(v, "TRT")
  y <- fev_nonmissing(v, "PBO")
  h <- t.test(x, y)
  welch_p[v] <- h$p.value
  add_htest(paste0("welch_", v), h)
  add_htest(paste0("pooled_", v), t.test(x, y, var.equal = TRUE))
  add_htest(paste0("ranksum_", v), wt(x, y))

  for (arm in arms) {
    s <- rows_of(v, arm)$FEV1
    case <- paste0("desc_", v, "_", arm)
    n <- sum(!is.na(s))
    add(case, "n", n)
    add(case, "n_missing", sum(is.na(s)))
    add(case, "mean", mean(s, na.rm = TRUE))
    add(case, "sd", sd(s, na.rm = TRUE))
    add(case, "se", sd(s, na.rm = TRUE) / sqrt(n))
    add(case, "median", median(s, na.rm = TRUE))
    add(case, "q1", quantile(s, 0.25, type = 7, na.rm = TRUE, names = FALSE))
    add(case, "q3", quantile(s, 0.75, type = 7, na.rm = TRUE, names = FALSE))
    add(case, "min", min(s, na.rm = TRUE))
    add(case, "max", max(s, na.rm = TRUE))
    for (type in 1:9) {
      q <- quantile(s, probs, type = type, na.rm = TRUE, names = FALSE)
      for (i in seq_along(probs)) {
        add(paste0("quantile_", v, "_", arm), paste0("type", type, "_p", probs[i]), q[i])
      }
    }

    p <- pairs_of(v, arm)
    add_htest(paste0("paired_t_", v, "_", arm), t.test(p$post, p$base, paired = TRUE))
    add_htest(paste0("signrank_", v, "_", arm), wt(p$post, p$base, paired = TRUE))
  }
}

# One-sided alternatives and another confidence level (normal-approximation cases).
x <- fev_nonmissing("VIS1", "TRT")
y <- fev_nonmissing("VIS1", "PBO")
for (alt in c("less", "greater")) {
  add_htest(paste0("welch_VIS1_", alt), t.test(x, y, alternative = alt, conf.level = 0.9))
  add_htest(paste0("pooled_VIS1_", alt), t.test(x, y, var.equal = TRUE, alternative = alt, conf.level = 0.9))
  add_htest(paste0("ranksum_VIS1_", alt), wt(x, y, alternative = alt, conf.level = 0.9))
  p <- pairs_of("VIS2", "TRT")
  add_htest(paste0("paired_t_VIS2_TRT_", alt), t.test(p$post, p$base, paired = TRUE, alternative = alt, conf.level = 0.9))
  add_htest(paste0("signrank_VIS2_TRT_", alt), wt(p$post, p$base, paired = TRUE, alternative = alt, conf.level = 0.9))
}

# One-sample tests on the change from baseline against mu = 2.
p <- pairs_of("VIS3", "PBO")
chg <- p$post - p$base
add_htest("one_sample_t_VIS3_PBO_mu2", t.test(chg, mu = 2))
add_htest("signrank_VIS3_PBO_mu2", wt(chg, mu = 2))

# Small exact subsets: the first 12 TRT and first 10 PBO non-missing FEV1
# values at VIS1 in file order (no ties), exact null distribution.
ex_x <- head(x, 12L)
ex_y <- head(y, 10L)
stopifnot(anyDuplicated(c(ex_x, ex_y)) == 0L)
add_htest("ranksum_exact", wt(ex_x, ex_y))
add_htest("ranksum_exact_less", wt(ex_x, ex_y, alternative = "less", conf.level = 0.9))
add_htest("ranksum_exact_greater", wt(ex_x, ex_y, alternative = "greater", conf.level = 0.9))
add_htest("welch_small", t.test(ex_x, ex_y))
add_htest("pooled_small", t.test(ex_x, ex_y, var.equal = TRUE))
# Three per arm: the 95% level is not achievable and R lowers it.
add_htest("ranksum_tiny", wt(head(x, 3L), head(y, 3L)))

# The same subsets rounded to integers: ties, so the normal
# approximation with tie correction although both n < 50.
tx <- round(ex_x)
ty <- round(ex_y)
stopifnot(anyDuplicated(c(tx, ty)) > 0L)
add_htest("ranksum_ties", wt(tx, ty))
add_htest("ranksum_ties_less", wt(tx, ty, alternative = "less"))
add_htest("ranksum_ties_greater", wt(tx, ty, alternative = "greater"))
# Without the continuity correction (correct = FALSE): p-value and interval.
add_htest("ranksum_ties_nocorrect", wt(tx, ty, correct = FALSE))
add_htest("ranksum_ties_nocorrect_less", wt(tx, ty, correct = FALSE, alternative = "less"))

# Signed rank, exact: first 15 changes from baseline, TRT at VIS1.
p <- pairs_of("VIS1", "TRT")
ex_d <- head(p$post - p$base, 15L)
stopifnot(anyDuplicated(abs(ex_d)) == 0L, all(ex_d != 0))
add_htest("signrank_exact", wt(ex_d))
add_htest("signrank_exact_less", wt(ex_d, alternative = "less", conf.level = 0.9))
add_htest("signrank_exact_greater", wt(ex_d, alternative = "greater", conf.level = 0.9))
add_htest("paired_t_small", t.test(ex_d))
# Four differences: the 95% level is not achievable and R lowers it.
add_htest("signrank_tiny", wt(head(ex_d, 4L)))
# Changes rounded to even numbers: ties and a zero, so normal approximation.
td <- 2 * round(ex_d / 2)
stopifnot(anyDuplicated(abs(td[td != 0])) > 0L, any(td == 0))
add_htest("signrank_ties", wt(td))
add_htest("signrank_ties_less", wt(td, alternative = "less"))
add_htest("signrank_ties_greater", wt(td, alternative = "greater"))
add_htest("signrank_ties_nocorrect", wt(td, correct = FALSE))
add_htest("signrank_ties_nocorrect_greater", wt(td, correct = FALSE, alternative = "greater"))
# Six of those: too few for the requested level, R widens alpha.
add_htest("signrank_ties_tiny", wt(head(td, 6L)))

# Multiplicity: the four visit-wise Welch p-values.
for (m in c("holm", "hochberg", "BH", "bonferroni")) {
  adj <- p.adjust(welch_p, method = m)
  for (v in visits) add(paste0("padjust_", m), paste0("adj_", v), adj[[v]])
}

write.csv(
  data.frame(case = out$case, quantity = out$quantity, value = out$value),
  args[2L],
  row.names = FALSE
)
