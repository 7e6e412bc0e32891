# R oracle for pipelines/msc_diabetes.toml (seed 004), run by tests/seed_msc_diabetes.rs.
# Usage: Rscript seed_msc_diabetes.R adlb.csv adrs.csv out.csv
# adlb.csv: USUBJID, ARMCD, PARAMCD, AVISIT, ANL01FL, BASE, CHG, PCHG (from adam/adlb.parquet)
# adrs.csv: USUBJID, ARMCD, PARAMCD, AVISIT, AVALC (from adam/adrs.parquet)
# Writes method,paramcd,avisit,group,quantity,value; group is trialpipe's GROUP text.
suppressPackageStartupMessages({ library(nlme); library(emmeans) })
args <- commandArgs(trailingOnly = TRUE)
adlb <- read.csv(args[1], stringsAsFactors = FALSE, na.strings = "")
adrs <- read.csv(args[2], stringsAsFactors = FALSE, na.strings = "")
lab <- c(MSC = "UC-MSC + insulin therapy", INSULIN = "Insulin therapy alone")
contrast_label <- paste(lab["MSC"], "-", lab["INSULIN"])
visits <- c("WEEK 12", "WEEK 24", "WEEK 48")
out <- list()
put <- function(method, paramcd, avisit, group, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(method = method, paramcd = paramcd, avisit = avisit,
    group = group, quantity = quantity, value = format(value, digits = 17))
}
a <- adlb[!is.na(adlb$ANL01FL) & adlb$ANL01FL == "Y", ]

# Welch t tests of change from baseline, MSC minus insulin alone, per parameter and visit.
for (p in c("HBA1C", "GLUC", "CPEPT", "INSULIN")) for (v in visits) {
  d <- a[a$PARAMCD == p & a$AVISIT == v & !is.na(a$CHG), ]
  t <- t.test(d$CHG[d$ARMCD == "MSC"], d$CHG[d$ARMCD == "INSULIN"])
  put("t_welch", p, v, contrast_label, "estimate", unname(t$estimate[1] - t$estimate[2]))
  put("t_welch", p, v, contrast_label, "se", t$stderr)
  put("t_welch", p, v, contrast_label, "df", unname(t$parameter))
  put("t_welch", p, v, contrast_label, "p_value", t$p.value)
  put("t_welch", p, v, contrast_label, "lcl", t$conf.int[1])
  put("t_welch", p, v, contrast_label, "ucl", t$conf.int[2])
}

# Wilcoxon rank-sum on percent change of the insulin dose, with Hodges-Lehmann.
for (v in visits) {
  d <- a[a$PARAMCD == "INSULIN" & a$AVISIT == v & !is.na(a$PCHG), ]
  w <- suppressWarnings(wilcox.test(d$PCHG[d$ARMCD == "MSC"], d$PCHG[d$ARMCD == "INSULIN"],
    conf.int = TRUE))
  put("wilcoxon_rank_sum", "INSULIN", v, contrast_label, "estimate", unname(w$estimate))
  put("wilcoxon_rank_sum", "INSULIN", v, contrast_label, "p_value", w$p.value)
}

# Primary MMRM: CHG ~ BASE + AVISIT + ARM + AVISIT:ARM, unstructured, REML.
for (p in c("HBA1C", "INSULIN")) {
  d <- a[a$PARAMCD == p & a$AVISIT %in% visits & !is.na(a$BASE) & !is.na(a$CHG), ]
  d$AVISIT <- factor(d$AVISIT, levels = visits)
  d$ARM <- factor(d$ARMCD, levels = c("INSULIN", "MSC"))
  d$SUBJ <- factor(d$USUBJID)
  d$VN <- as.integer(d$AVISIT)
  fit <- gls(CHG ~ BASE + AVISIT + ARM + AVISIT:ARM, data = d,
    correlation = corSymm(form = ~ VN | SUBJ), weights = varIdent(form = ~ 1 | AVISIT),
    method = "REML",
    control = glsControl(tolerance = 1e-12, msTol = 1e-12, opt = "optim", maxIter = 500, msMaxIter = 500))
  ct <- summary(contrast(emmeans(fit, ~ ARM | AVISIT, mode = "df.error"), method = "revpairwise"))
  for (i in seq_len(nrow(ct))) {
    v <- as.character(ct$AVISIT[i])
    put("mmrm_difference", p, v, contrast_label, "estimate", ct$estimate[i])
    put("mmrm_difference", p, v, contrast_label, "se", ct$SE[i])
  }
}

# Responders: Wilson (prop.test without correction) and Clopper-Pearson intervals per arm,
# Fisher's exact test between arms.
rs <- adrs[!is.na(adrs$AVALC), ]
for (id in c("INS50", "INSSTOP", "HBA1C7")) for (v in visits) {
  d <- rs[rs$PARAMCD == id & rs$AVISIT == v, ]
  x <- c(); n <- c()
  for (arm in c("MSC", "INSULIN")) {
    x[arm] <- sum(d$AVALC == "Y" & d$ARMCD == arm); n[arm] <- sum(d$ARMCD == arm)
    w <- suppressWarnings(prop.test(x[arm], n[arm], correct = FALSE))$conf.int
    put("proportion_wilson", id, v, lab[arm], "estimate", x[arm] / n[arm])
    put("proportion_wilson", id, v, lab[arm], "n", n[arm])
    put("proportion_wilson", id, v, lab[arm], "lcl", w[1])
    put("proportion_wilson", id, v, lab[arm], "ucl", w[2])
    b <- binom.test(x[arm], n[arm])$conf.int
    put("proportion_clopper_pearson", id, v, lab[arm], "lcl", b[1])
    put("proportion_clopper_pearson", id, v, lab[arm], "ucl", b[2])
  }
  tab <- matrix(c(x["MSC"], n["MSC"] - x["MSC"], x["INSULIN"], n["INSULIN"] - x["INSULIN"]), 2,
    byrow = TRUE)
  put("fisher_exact_or", id, v, contrast_label, "p_value", fisher.test(tab)$p.value)
}
write.csv(do.call(rbind, out), args[3], row.names = FALSE)
