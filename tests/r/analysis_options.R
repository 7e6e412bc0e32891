# R oracle for tests/analyze_options.rs: the flagship analyses with non-default per-analysis
# options, on the datasets trialpipe derived.
#   ancova_sens    [analyses.ancova] stratified = true: lm(CHG ~ BASE + ARM + STRAT1), emmeans
#   wilcoxon_sens  [analyses.wilcoxon] method = "normal", correction = "none":
#                  wilcox.test(exact = FALSE, correct = FALSE)
#   ttest          [analyses.t_test] variance = "pooled": t.test(var.equal = TRUE)
#   responders     [analyses.responders] cmh_correction = "yates": mantelhaen.test(correct = TRUE)
#   survival       [analyses.survival] ties = "breslow": coxph(ties = "breslow"), also strata()
# Usage: Rscript analysis_options.R adlb.csv adtte.csv adrs.csv adsl.csv out.csv
# Writes rows method,paramcd,avisit,quantity,value with 17 significant digits.
suppressPackageStartupMessages({
  library(emmeans)
  library(survival)
})
args <- commandArgs(trailingOnly = TRUE)
adlb <- read.csv(args[1], stringsAsFactors = FALSE, na.strings = "")
adtte <- read.csv(args[2], stringsAsFactors = FALSE, na.strings = "")
rs <- read.csv(args[3], stringsAsFactors = FALSE, na.strings = "")
adsl <- read.csv(args[4], stringsAsFactors = FALSE, na.strings = "", colClasses = "character")
strat1 <- setNames(adsl$STRAT1, adsl$USUBJID)
out <- list()
put <- function(method, paramcd, avisit, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(method = method, paramcd = paramcd, avisit = avisit,
    quantity = quantity, value = format(value, digits = 17))
}
a <- adlb[!is.na(adlb$ANL01FL) & adlb$ANL01FL == "Y" & !is.na(adlb$CHG), ]
a$STRAT <- factor(strat1[a$USUBJID])
visits <- c("WEEK 12", "WEEK 24", "WEEK 48")
for (p in c("ALT", "BILI", "PT", "ALB", "PREALB", "MELD", "ALBI")) {
  for (v in visits) {
    d <- a[a$PARAMCD == p & a$AVISIT == v & !is.na(a$BASE), ]
    d$ARM <- factor(d$ARMCD, levels = c("SALINE", "MSC"))
    d$STRAT <- droplevels(d$STRAT)
    fit <- lm(CHG ~ BASE + ARM + STRAT, data = d)
    em <- emmeans(fit, ~ ARM)
    s <- summary(em)
    for (i in seq_len(nrow(s))) {
      arm <- as.character(s$ARM[i])
      put("ancova_lsmean", p, paste0(v, "|", arm), "estimate", s$emmean[i])
      put("ancova_lsmean", p, paste0(v, "|", arm), "se", s$SE[i])
      put("ancova_lsmean", p, paste0(v, "|", arm), "df", s$df[i])
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
for (p in c("ALT", "BILI", "PT", "ALB", "PREALB")) {
  for (v in visits) {
    d <- a[a$PARAMCD == p & a$AVISIT == v, ]
    x <- d$CHG[d$ARMCD == "MSC"]
    y <- d$CHG[d$ARMCD == "SALINE"]
    w <- wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = FALSE)
    put("wilcoxon_rank_sum", p, v, "estimate", unname(w$estimate))
    put("wilcoxon_rank_sum", p, v, "statistic", unname(w$statistic))
    put("wilcoxon_rank_sum", p, v, "p_value", w$p.value)
    put("wilcoxon_rank_sum", p, v, "lcl", w$conf.int[1])
    put("wilcoxon_rank_sum", p, v, "ucl", w$conf.int[2])
    t <- t.test(x, y, var.equal = TRUE)
    put("t_pooled", p, v, "estimate", unname(t$estimate[1] - t$estimate[2]))
    put("t_pooled", p, v, "p_value", t$p.value)
  }
}
rs <- rs[!is.na(rs$AVALC), ]
for (id in unique(rs$PARAMCD)) for (v in unique(rs$AVISIT)) {
  d <- rs[rs$PARAMCD == id & rs$AVISIT == v, ]
  if (nrow(d) == 0) next
  d$STRAT <- strat1[d$USUBJID]
  arr <- table(factor(d$ARMCD, levels = c("MSC", "SALINE")),
               factor(d$AVALC == "Y", levels = c(TRUE, FALSE)), d$STRAT)
  arr <- arr[, , apply(arr, 3, sum) >= 2, drop = FALSE]
  mh <- tryCatch(mantelhaen.test(arr, correct = TRUE), error = function(e) NULL)
  if (!is.null(mh) && is.finite(mh$estimate) && mh$estimate > 0) {
    put("cmh", id, v, "statistic", unname(mh$statistic))
    put("cmh", id, v, "p_value", mh$p.value)
  }
}
for (p in c("OS", "TFS")) {
  d <- adtte[adtte$PARAMCD == p, ]
  d$ARM <- factor(d$ARMCD, levels = c("SALINE", "MSC"))
  d$EV <- as.integer(d$CNSR == 0)
  cx <- coxph(Surv(AVAL, EV) ~ ARM, data = d, ties = "breslow")
  sm <- summary(cx)
  put("cox_hr", p, "", "estimate", unname(exp(coef(cx))))
  put("cox_hr", p, "", "se", unname(sqrt(diag(vcov(cx)))))
  put("cox_hr", p, "", "p_value", unname(sm$coefficients[1, 5]))
  put("cox_hr", p, "", "lcl", unname(sm$conf.int[1, 3]))
  put("cox_hr", p, "", "ucl", unname(sm$conf.int[1, 4]))
  d$STRAT <- factor(d$STRAT1)
  cxs <- coxph(Surv(AVAL, EV) ~ ARM + strata(STRAT), data = d, ties = "breslow")
  put("cox_hr_stratified", p, "", "estimate", unname(exp(coef(cxs))))
  put("cox_hr_stratified", p, "", "se", unname(sqrt(diag(vcov(cxs)))))
  put("cox_hr_stratified", p, "", "p_value", unname(summary(cxs)$coefficients[1, 5]))
}
write.csv(do.call(rbind, out), args[5], row.names = FALSE)
