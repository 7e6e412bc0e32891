# R oracle for `trialpipe analyze` on the flagship sample data.
# Usage: Rscript flagship_analyses.R adlb.csv adtte.csv out.csv [adrs.csv [adsl.csv]]
# adlb.csv: USUBJID, ARMCD, PARAMCD, AVISIT, ANL01FL, BASE, CHG (exported from adam/adlb.parquet)
# adtte.csv: USUBJID, ARMCD, PARAMCD, AVAL, CNSR, STRAT1 (from adam/adtte.parquet)
# adrs.csv: USUBJID, ARMCD, PARAMCD, AVISIT, AVALC; adsl.csv: USUBJID, STRAT1
# Writes rows method,paramcd,avisit,quantity,value with 17 significant digits.
suppressPackageStartupMessages({
  library(emmeans)
  library(survival)
  library(nlme)
})
args <- commandArgs(trailingOnly = TRUE)
adlb <- read.csv(args[1], stringsAsFactors = FALSE, na.strings = "")
adtte <- read.csv(args[2], stringsAsFactors = FALSE, na.strings = "")
out <- list()
put <- function(method, paramcd, avisit, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(method = method, paramcd = paramcd, avisit = avisit,
    quantity = quantity, value = format(value, digits = 17))
}
a <- adlb[!is.na(adlb$ANL01FL) & adlb$ANL01FL == "Y" & !is.na(adlb$CHG), ]
welch_p <- c()
for (p in c("ALT", "BILI", "PT", "ALB", "PREALB")) {
  for (v in c("WEEK 12", "WEEK 24", "WEEK 48")) {
    d <- a[a$PARAMCD == p & a$AVISIT == v, ]
    x <- d$CHG[d$ARMCD == "MSC"]
    y <- d$CHG[d$ARMCD == "SALINE"]
    for (eq in c(FALSE, TRUE)) {
      m <- if (eq) "t_pooled" else "t_welch"
      t <- t.test(x, y, var.equal = eq)
      put(m, p, v, "estimate", unname(t$estimate[1] - t$estimate[2]))
      put(m, p, v, "se", unname(t$stderr))
      put(m, p, v, "df", unname(t$parameter))
      put(m, p, v, "statistic", unname(t$statistic))
      put(m, p, v, "p_value", t$p.value)
      put(m, p, v, "lcl", t$conf.int[1])
      put(m, p, v, "ucl", t$conf.int[2])
      if (!eq) welch_p <- c(welch_p, t$p.value)
    }
    w <- suppressWarnings(wilcox.test(x, y, conf.int = TRUE))
    put("wilcoxon_rank_sum", p, v, "estimate", unname(w$estimate))
    put("wilcoxon_rank_sum", p, v, "statistic", unname(w$statistic))
    put("wilcoxon_rank_sum", p, v, "p_value", w$p.value)
    put("wilcoxon_rank_sum", p, v, "lcl", w$conf.int[1])
    put("wilcoxon_rank_sum", p, v, "ucl", w$conf.int[2])
    d$ARM <- factor(d$ARMCD, levels = c("SALINE", "MSC"))
    fit <- lm(CHG ~ BASE + ARM, data = d)
    em <- emmeans(fit, ~ ARM)
    s <- summary(em)
    for (i in seq_len(nrow(s))) {
      arm <- as.character(s$ARM[i])
      put("ancova_lsmean", p, v, paste0("estimate_", arm), s$emmean[i])
      put("ancova_lsmean", p, v, paste0("se_", arm), s$SE[i])
    }
    ct <- summary(contrast(em, method = "revpairwise"), infer = TRUE)
    put("ancova_difference", p, v, "estimate", ct$estimate[1])
    put("ancova_difference", p, v, "se", ct$SE[1])
    put("ancova_difference", p, v, "df", ct$df[1])
    put("ancova_difference", p, v, "p_value", ct$p.value[1])
    put("ancova_difference", p, v, "lcl", ct$lower.CL[1])
    put("ancova_difference", p, v, "ucl", ct$upper.CL[1])
  }
}
# MMRM: CHG ~ BASE + AVISIT + ARM + AVISIT:ARM, unstructured covariance (corSymm + varIdent),
# REML, with tight optimizer control; arm difference per visit with emmeans.
visits <- c("WEEK 12", "WEEK 24", "WEEK 48")
for (p in c("ALT", "BILI", "PT", "ALB", "PREALB")) {
  d <- a[a$PARAMCD == p & a$AVISIT %in% visits & !is.na(a$BASE), ]
  d$AVISIT <- factor(d$AVISIT, levels = visits)
  d$ARM <- factor(d$ARMCD, levels = c("SALINE", "MSC"))
  d$SUBJ <- factor(d$USUBJID)
  d$VN <- as.integer(d$AVISIT)
  fit <- gls(CHG ~ BASE + AVISIT + ARM + AVISIT:ARM, data = d,
    correlation = corSymm(form = ~ VN | SUBJ), weights = varIdent(form = ~ 1 | AVISIT),
    method = "REML",
    control = glsControl(tolerance = 1e-12, msTol = 1e-12, opt = "optim", maxIter = 500, msMaxIter = 500))
  em <- emmeans(fit, ~ ARM | AVISIT, mode = "df.error")
  ct <- summary(contrast(em, method = "revpairwise"))
  for (i in seq_len(nrow(ct))) {
    v <- as.character(ct$AVISIT[i])
    put("mmrm_difference", p, v, "estimate", ct$estimate[i])
    put("mmrm_difference", p, v, "se", ct$SE[i])
  }
  put("mmrm_difference", p, "", "m2loglik", -2 * as.numeric(logLik(fit)))
}

adj <- p.adjust(welch_p, method = "holm")
i <- 0
for (p in c("ALT", "BILI", "PT", "ALB", "PREALB")) {
  for (v in c("WEEK 12", "WEEK 24", "WEEK 48")) {
    i <- i + 1
    put("t_welch", p, v, "p_adjusted", adj[i])
  }
}
for (p in c("OS", "TFS")) {
  d <- adtte[adtte$PARAMCD == p, ]
  d$ARM <- factor(d$ARMCD, levels = c("SALINE", "MSC"))
  d$EV <- as.integer(d$CNSR == 0)
  lr <- survdiff(Surv(AVAL, EV) ~ ARM, data = d)
  put("log_rank", p, "", "statistic", lr$chisq)
  put("log_rank", p, "", "p_value", pchisq(lr$chisq, 1, lower.tail = FALSE))
  cx <- coxph(Surv(AVAL, EV) ~ ARM, data = d, ties = "efron")
  sm <- summary(cx)
  put("cox_hr", p, "", "estimate", unname(exp(coef(cx))))
  put("cox_hr", p, "", "se", unname(sqrt(diag(vcov(cx)))))
  put("cox_hr", p, "", "p_value", unname(sm$coefficients[1, 5]))
  put("cox_hr", p, "", "lcl", unname(sm$conf.int[1, 3]))
  put("cox_hr", p, "", "ucl", unname(sm$conf.int[1, 4]))
  d$STRAT <- factor(d$STRAT1)
  lrs <- survdiff(Surv(AVAL, EV) ~ ARM + strata(STRAT), data = d)
  put("log_rank_stratified", p, "", "statistic", lrs$chisq)
  put("log_rank_stratified", p, "", "p_value", pchisq(lrs$chisq, 1, lower.tail = FALSE))
  cxs <- coxph(Surv(AVAL, EV) ~ ARM + strata(STRAT), data = d, ties = "efron")
  put("cox_hr_stratified", p, "", "estimate", unname(exp(coef(cxs))))
  put("cox_hr_stratified", p, "", "se", unname(sqrt(diag(vcov(cxs)))))
  put("cox_hr_stratified", p, "", "p_value", unname(summary(cxs)$coefficients[1, 5]))
  km <- survfit(Surv(AVAL, EV) ~ ARM, data = d)
  tab <- summary(km)$table
  for (arm in c("SALINE", "MSC")) {
    row <- tab[paste0("ARM=", arm), ]
    put("km_median", p, arm, "estimate", unname(row["median"]))
    put("km_median", p, arm, "lcl", unname(row["0.95LCL"]))
  }
}
# Responders (adrs.csv): proportions with Wilson and Clopper-Pearson intervals, Newcombe risk
# difference (method 10, coded from Newcombe 1998), Wald odds ratio, Fisher, chi-square.
if (length(args) >= 4) {
  rs <- read.csv(args[4], stringsAsFactors = FALSE, na.strings = "")
  rs <- rs[!is.na(rs$AVALC), ]
  if (length(args) >= 5) {
    adsl <- read.csv(args[5], stringsAsFactors = FALSE, na.strings = "", colClasses = "character")
    strat1 <- setNames(adsl$STRAT1, adsl$USUBJID)
  }
  wilson <- function(x, n) { z <- qnorm(0.975); p <- x / n
    c((p + z^2 / (2 * n) - z * sqrt(p * (1 - p) / n + z^2 / (4 * n^2))) / (1 + z^2 / n),
      (p + z^2 / (2 * n) + z * sqrt(p * (1 - p) / n + z^2 / (4 * n^2))) / (1 + z^2 / n)) }
  for (id in unique(rs$PARAMCD)) for (v in unique(rs$AVISIT)) {
    d <- rs[rs$PARAMCD == id & rs$AVISIT == v, ]
    if (nrow(d) == 0) next
    x1 <- sum(d$AVALC == "Y" & d$ARMCD == "MSC"); n1 <- sum(d$ARMCD == "MSC")
    x2 <- sum(d$AVALC == "Y" & d$ARMCD == "SALINE"); n2 <- sum(d$ARMCD == "SALINE")
    for (arm in c("MSC", "SALINE")) {
      x <- if (arm == "MSC") x1 else x2; n <- if (arm == "MSC") n1 else n2
      w <- wilson(x, n)
      put("proportion_wilson", id, paste0(v, "|", arm), "estimate", x / n)
      put("proportion_wilson", id, paste0(v, "|", arm), "lcl", w[1])
      put("proportion_wilson", id, paste0(v, "|", arm), "ucl", w[2])
      b <- binom.test(x, n)$conf.int
      put("proportion_clopper_pearson", id, paste0(v, "|", arm), "lcl", b[1])
      put("proportion_clopper_pearson", id, paste0(v, "|", arm), "ucl", b[2])
    }
    w1 <- wilson(x1, n1); w2 <- wilson(x2, n2); p1 <- x1 / n1; p2 <- x2 / n2
    put("risk_difference_newcombe", id, v, "estimate", p1 - p2)
    put("risk_difference_newcombe", id, v, "lcl", p1 - p2 - sqrt((p1 - w1[1])^2 + (w2[2] - p2)^2))
    put("risk_difference_newcombe", id, v, "ucl", p1 - p2 + sqrt((w1[2] - p1)^2 + (p2 - w2[1])^2))
    tab <- matrix(c(x1, n1 - x1, x2, n2 - x2), 2, byrow = TRUE)
    f <- fisher.test(tab)
    put("fisher_exact_or", id, v, "p_value", f$p.value)
    if (all(tab > 0)) {
      put("fisher_exact_or", id, v, "estimate", unname(f$estimate))
      lo <- log(tab[1, 1] * tab[2, 2] / (tab[1, 2] * tab[2, 1])); se <- sqrt(sum(1 / tab))
      put("odds_ratio_wald", id, v, "estimate", exp(lo))
      put("odds_ratio_wald", id, v, "lcl", exp(lo - qnorm(0.975) * se))
      put("odds_ratio_wald", id, v, "ucl", exp(lo + qnorm(0.975) * se))
      ch <- suppressWarnings(chisq.test(tab, correct = FALSE))
      put("chi_square", id, v, "statistic", unname(ch$statistic))
      put("chi_square", id, v, "p_value", ch$p.value)
    }
    # Stratified by STRAT1 of ADSL (args[5]): CMH without continuity correction (the pipeline's
    # default) and the Mantel-Haenszel odds ratio with its Robins-Breslow-Greenland interval.
    # Strata with fewer than 2 subjects are left out (mantelhaen.test refuses them).
    if (length(args) >= 5) {
      d$STRAT <- strat1[d$USUBJID]
      d$STRAT[is.na(d$STRAT)] <- ""
      arr <- table(factor(d$ARMCD, levels = c("MSC", "SALINE")),
                   factor(d$AVALC == "Y", levels = c(TRUE, FALSE)), d$STRAT)
      arr <- arr[, , apply(arr, 3, sum) >= 2, drop = FALSE]
      mh <- tryCatch(mantelhaen.test(arr, correct = FALSE), error = function(e) NULL)
      if (!is.null(mh) && is.finite(mh$estimate) && mh$estimate > 0) {
        put("cmh", id, v, "statistic", unname(mh$statistic))
        put("cmh", id, v, "p_value", mh$p.value)
        put("odds_ratio_mh", id, v, "estimate", unname(mh$estimate))
        put("odds_ratio_mh", id, v, "lcl", mh$conf.int[1])
        put("odds_ratio_mh", id, v, "ucl", mh$conf.int[2])
      }
    }
  }
}
write.csv(do.call(rbind, out), args[3], row.names = FALSE)
