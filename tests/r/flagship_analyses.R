# R oracle for `trialpipe analyze` on the flagship sample data.
# Usage: Rscript flagship_analyses.R adlb.csv adtte.csv out.csv
# adlb.csv: USUBJID, ARMCD, PARAMCD, AVISIT, ANL01FL, BASE, CHG (exported from adam/adlb.parquet)
# adtte.csv: USUBJID, ARMCD, PARAMCD, AVAL, CNSR, STRAT1 (from adam/adtte.parquet)
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
write.csv(do.call(rbind, out), args[3], row.names = FALSE)
