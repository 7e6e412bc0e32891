# R oracle for pipelines/ucmsc_hbv_cirrhosis.toml (seed 001), run by tests/seed_ucmsc_hbv_cirrhosis.rs.
# Usage: Rscript seed_ucmsc_hbv_cirrhosis.R subjects.csv adlb.csv adtte.csv out.csv eligibility.csv
# subjects.csv: the raw subjects file; adlb.csv: USUBJID, PARAMCD, AVISIT, ANL01FL, ABLFL,
# AVAL, BASE, CHG; adtte.csv: PARAMCD, AVAL, CNSR.
# out.csv: method,paramcd,avisit,group,quantity,value (group is trialpipe's GROUP text).
# eligibility.csv: subject_id,criterion,met (Y, N or empty for unknown), and criterion ELIGFL with
# the verdict, all with R's three-valued logic (NA & FALSE is FALSE, NA | TRUE is TRUE).
suppressPackageStartupMessages({ library(nlme); library(emmeans); library(survival) })
args <- commandArgs(trailingOnly = TRUE)
subj <- read.csv(args[1], stringsAsFactors = FALSE, na.strings = "", colClasses = "character")
adlb <- read.csv(args[2], stringsAsFactors = FALSE, na.strings = "")
adtte <- read.csv(args[3], stringsAsFactors = FALSE, na.strings = "")
arm <- "UC-MSC 1x10^8 cells IV, 2 doses 24 weeks apart"
visits <- c("WEEK 4", "WEEK 12", "WEEK 24", "WEEK 36", "WEEK 48")
out <- list()
put <- function(method, paramcd, avisit, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(method = method, paramcd = paramcd, avisit = avisit,
    group = arm, quantity = quantity, value = format(value, digits = 17))
}

# --- Screening: the protocol's criteria from the subjects file and the baseline PT.
d <- function(x) as.Date(x)
days <- function(a, b) as.numeric(d(b) - d(a))
base_pt <- adlb[adlb$PARAMCD == "PT" & !is.na(adlb$ABLFL) & adlb$ABLFL == "Y", ]
subj$base_pt <- base_pt$AVAL[match(paste0("NCT05106972-", subj$subject_id), base_pt$USUBJID)]
age <- as.numeric(subj$age)
uln_pt <- 13.5
crit <- with(subj, list(
  AGE = list("inclusion", age >= 20 & age <= 60),
  COURSE = list("inclusion", cirrhosis_etiology == "HBV" &
    days(cirrhosis_diagnosis_date, randomization_date) > 5 * 365.25),
  NOBLEED = list("inclusion", active_bleeding == "N"),
  NOHE = list("inclusion", hepatic_encephalopathy == "N"),
  OTHERCAU = list("exclusion", ifelse(is.na(cirrhosis_etiology), NA,
    cirrhosis_etiology %in% c("ALCOHOL", "HCV", "AUTOIMMUNE"))),
  LIVERCA = list("exclusion", liver_malignancy == "Y" | family_liver_malignancy == "Y"),
  SPLEEN = list("exclusion", splenectomy_needed == "Y"),
  TUMOR = list("exclusion", other_tumor_history == "Y"),
  PTPROL = list("exclusion", base_pt > uln_pt + 3),
  ALBINF = list("exclusion", !is.na(last_albumin_infusion_date) &
    days(last_albumin_infusion_date, randomization_date) <= 21),
  GIBLEED = list("exclusion", !is.na(last_gi_bleeding_date) &
    days(last_gi_bleeding_date, randomization_date) <= 28),
  SBP = list("exclusion", spontaneous_peritonitis == "Y"),
  INFECT = list("exclusion", active_infection == "Y"),
  PREGNANT = list("exclusion", sex == "F" & pregnant_or_lactating == "Y")
))
yn <- function(x) ifelse(is.na(x), "", ifelse(x, "Y", "N"))
rows <- list()
all_met <- rep(TRUE, nrow(subj))
for (id in names(crit)) {
  met <- if (crit[[id]][[1]] == "inclusion") crit[[id]][[2]] else !crit[[id]][[2]]
  all_met <- all_met & met
  rows[[id]] <- data.frame(subject_id = subj$subject_id, criterion = id, met = yn(met))
}
rows[["ELIGFL"]] <- data.frame(subject_id = subj$subject_id, criterion = "ELIGFL", met = yn(all_met))
write.csv(do.call(rbind, rows), args[5], row.names = FALSE)

# --- Within-arm change from baseline: paired t (one-sample t on CHG) and signed-rank.
a <- adlb[!is.na(adlb$ANL01FL) & adlb$ANL01FL == "Y", ]
for (p in c("ALT", "BILI", "ALB", "PT", "MELD")) for (v in visits) {
  x <- a$CHG[a$PARAMCD == p & a$AVISIT == v & !is.na(a$CHG)]
  t <- t.test(x)
  put("t_paired", p, v, "n", length(x))
  put("t_paired", p, v, "estimate", unname(t$estimate))
  put("t_paired", p, v, "se", t$stderr)
  put("t_paired", p, v, "df", unname(t$parameter))
  put("t_paired", p, v, "statistic", unname(t$statistic))
  put("t_paired", p, v, "p_value", t$p.value)
  put("t_paired", p, v, "lcl", t$conf.int[1])
  put("t_paired", p, v, "ucl", t$conf.int[2])
  w <- suppressWarnings(wilcox.test(x, conf.int = TRUE))
  put("wilcoxon_signed_rank", p, v, "estimate", unname(w$estimate))
  put("wilcoxon_signed_rank", p, v, "p_value", w$p.value)
}

# --- MMRM without an arm term: CHG ~ BASE + AVISIT, unstructured, REML; LS-mean per visit.
for (p in c("ALB", "BILI", "MELD")) {
  m <- a[a$PARAMCD == p & a$AVISIT %in% visits & !is.na(a$BASE) & !is.na(a$CHG), ]
  m$AVISIT <- factor(m$AVISIT, levels = visits)
  m$VN <- as.integer(m$AVISIT); m$SUBJ <- factor(m$USUBJID)
  fit <- gls(CHG ~ BASE + AVISIT, data = m, correlation = corSymm(form = ~ VN | SUBJ),
    weights = varIdent(form = ~ 1 | AVISIT), method = "REML",
    control = glsControl(tolerance = 1e-12, msTol = 1e-12, opt = "optim", maxIter = 500, msMaxIter = 500))
  s <- summary(emmeans(fit, ~ AVISIT, mode = "df.error"))
  for (i in seq_len(nrow(s))) {
    put("mmrm_lsmean", p, as.character(s$AVISIT[i]), "estimate", s$emmean[i])
    put("mmrm_lsmean", p, as.character(s$AVISIT[i]), "se", s$SE[i])
  }
}

# --- Kaplan-Meier of overall and transplant-free survival at 12 and 24 months.
for (p in c("OS", "TFS")) {
  t <- adtte[adtte$PARAMCD == p, ]
  km <- survfit(Surv(AVAL, CNSR == 0) ~ 1, data = t)
  s <- summary(km, times = c(12, 24) * 30.4375)
  for (i in seq_along(s$time)) {
    v <- paste("MONTH", c(12, 24)[i])
    put("km_survival", p, v, "n", s$n.risk[i])
    put("km_survival", p, v, "estimate", s$surv[i])
    put("km_survival", p, v, "lcl", s$lower[i])
    put("km_survival", p, v, "ucl", s$upper[i])
  }
}
write.csv(do.call(rbind, out), args[4], row.names = FALSE)
