#!/usr/bin/env Rscript
# R oracle for trialpipe's survival, contingency-table and ANCOVA routines
# (src/stats/survival.rs, contingency.rs, ancova.rs).
#
# Usage: Rscript tests/r/survival_contingency.R <fev_data.csv> <out.csv>
#
# Needs base R plus the survival and emmeans packages
# (Debian: r-base-core r-cran-survival r-cran-emmeans).
#
# Besides <out.csv> (rows case,quantity,value with format(x, digits = 17);
# NA where R reports NA), the script writes the real data it analyses next to
# <out.csv>, so that the Rust test reads exactly the same observations:
#   lung.csv     survival::lung: time, status (0 censored, 1 dead), sex, ph_ecog
#   veteran.csv  survival::veteran: time, status, trt, celltype
#   tables.csv   2x2 tables: set, stratum, a, b, c, d (rows = groups,
#                columns = outcome present / absent), from UCBAdmissions,
#                esoph and infert (datasets package)
# tests/survival_contingency_vs_r.rs mirrors every case defined here.

for (pkg in c("survival", "emmeans")) {
  if (!requireNamespace(pkg, quietly = TRUE)) {
    stop("R package '", pkg, "' is missing: apt-get install -y --no-install-recommends ",
         "r-cran-survival r-cran-emmeans")
  }
}
suppressPackageStartupMessages({
  library(survival)
  library(emmeans)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2L) {
  stop("usage: Rscript survival_contingency.R <fev_data.csv> <out.csv>")
}
fev_path <- args[1L]
out_path <- args[2L]
out_dir <- dirname(out_path)

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

# ---------------------------------------------------------------- data ----
lung_d <- data.frame(
  time = survival::lung$time,
  status = survival::lung$status - 1L, # 1 censored, 2 dead -> 0 / 1
  sex = survival::lung$sex,
  ph_ecog = survival::lung$ph.ecog
)
write.csv(lung_d, file.path(out_dir, "lung.csv"), row.names = FALSE, na = "NA")
vet_d <- data.frame(
  time = survival::veteran$time,
  status = survival::veteran$status,
  trt = survival::veteran$trt,
  celltype = as.character(survival::veteran$celltype)
)
write.csv(vet_d, file.path(out_dir, "veteran.csv"), row.names = FALSE)
celltype_levels <- levels(survival::veteran$celltype)

# 2x2 tables: rows = groups (group 1 first), columns = outcome yes / no.
tables <- data.frame(set = character(), stratum = character(),
                     a = integer(), b = integer(), c = integer(), d = integer())
add_table <- function(set, stratum, a, b, c, d) {
  tables[nrow(tables) + 1L, ] <<- list(set, stratum, a, b, c, d)
}
# UCBAdmissions[Admit, Gender, Dept]: group 1 = Male, group 2 = Female,
# outcome = Admitted.
ucb <- datasets::UCBAdmissions
for (k in dimnames(ucb)$Dept) {
  add_table("ucb", k, ucb["Admitted", "Male", k], ucb["Rejected", "Male", k],
            ucb["Admitted", "Female", k], ucb["Rejected", "Female", k])
}
# esoph: group 1 = alcohol >= 80 g/day, group 2 = < 80 g/day, outcome = case,
# per age group.
es <- datasets::esoph
high <- es$alcgp %in% c("80-119", "120+")
for (g in levels(es$agegp)) {
  s <- es$agegp == g
  add_table("esoph", g, sum(es$ncases[s & high]), sum(es$ncontrols[s & high]),
            sum(es$ncases[s & !high]), sum(es$ncontrols[s & !high]))
}
# infert: group 1 = any induced abortion, group 2 = none, outcome = case
# (infertile), per education level.
inf <- datasets::infert
for (e in levels(inf$education)) {
  s <- inf$education == e
  ind <- inf$induced > 0
  add_table("infert", e, sum(inf$case[s & ind] == 1), sum(inf$case[s & ind] == 0),
            sum(inf$case[s & !ind] == 1), sum(inf$case[s & !ind] == 0))
}
write.csv(tables, file.path(out_dir, "tables.csv"), row.names = FALSE)

# ------------------------------------------------------- Kaplan-Meier ----
# Every row of fit$time (event and censoring times): std_err_log is
# fit$std.err (SE of log S = SE of the cumulative hazard), std_err is the SE
# of S as summary(fit) reports it.
add_km <- function(case, fit, landmarks, risk_times) {
  z <- fit
  for (i in seq_along(z$time)) {
    r <- paste0("r", i, "_")
    add(case, paste0(r, "time"), z$time[i])
    add(case, paste0(r, "n_risk"), z$n.risk[i])
    add(case, paste0(r, "n_event"), z$n.event[i])
    add(case, paste0(r, "n_censor"), z$n.censor[i])
    add(case, paste0(r, "surv"), z$surv[i])
    se <- z$std.err[i]
    add(case, paste0(r, "std_err_log"), if (is.finite(se)) se else NA)
    add(case, paste0(r, "cumhaz"), z$cumhaz[i])
    add(case, paste0(r, "std_chaz"), z$std.chaz[i])
    add(case, paste0(r, "lower"), z$lower[i])
    add(case, paste0(r, "upper"), z$upper[i])
  }
  s <- summary(fit)
  for (i in seq_along(s$time)) {
    r <- paste0("ev", i, "_")
    add(case, paste0(r, "time"), s$time[i])
    add(case, paste0(r, "n_censor"), s$n.censor[i])
    add(case, paste0(r, "std_err"), if (is.finite(s$std.err[i])) s$std.err[i] else NA)
  }
  tab <- summary(fit)$table
  add(case, "n", tab[["records"]])
  add(case, "n_events", tab[["events"]])
  add(case, "median", tab[["median"]])
  lev <- fit$conf.int
  add(case, "median_lower", tab[[paste0(lev, "LCL")]])
  add(case, "median_upper", tab[[paste0(lev, "UCL")]])
  lm <- summary(fit, times = landmarks)
  for (i in seq_along(lm$time)) {
    r <- paste0("at", format(lm$time[i]), "_")
    add(case, paste0(r, "n_risk"), lm$n.risk[i])
    add(case, paste0(r, "n_event"), lm$n.event[i])
    add(case, paste0(r, "n_censor"), lm$n.censor[i])
    add(case, paste0(r, "surv"), lm$surv[i])
    add(case, paste0(r, "std_err"), lm$std.err[i])
    add(case, paste0(r, "lower"), lm$lower[i])
    add(case, paste0(r, "upper"), lm$upper[i])
  }
  nr <- summary(fit, times = risk_times, extend = TRUE)
  for (i in seq_along(nr$time)) {
    add(case, paste0("risk", format(nr$time[i])), nr$n.risk[i])
  }
}
km_groups <- function(prefix, formula, data, groups, landmarks, risk_times, ...) {
  fit <- survfit(formula, data = data, ...)
  for (j in seq_along(groups)) {
    add_km(paste0(prefix, "_", groups[j]), fit[j], landmarks, risk_times)
  }
}
lung_landmarks <- c(90, 180, 365, 730)
lung_risk <- seq(0, 1000, by = 100)
km_groups("km_lung_sex", Surv(time, status) ~ sex, lung_d, 1:2,
          lung_landmarks, lung_risk)
km_groups("km_lung_sex_loglog", Surv(time, status) ~ sex, lung_d, 1:2,
          lung_landmarks, lung_risk, conf.type = "log-log")
km_groups("km_lung_sex_plain90", Surv(time, status) ~ sex, lung_d, 1:2,
          lung_landmarks, lung_risk, conf.type = "plain", conf.int = 0.9)
add_km("km_lung_all", survfit(Surv(time, status) ~ 1, data = lung_d),
       lung_landmarks, lung_risk)
km_groups("km_veteran_trt", Surv(time, status) ~ trt, vet_d, 1:2,
          c(30, 90, 180, 365), seq(0, 900, by = 100))

# ------------------------------------------------------------ log-rank ----
add_logrank <- function(case, sd) {
  obs <- if (is.matrix(sd$obs)) rowSums(sd$obs) else sd$obs
  ex <- if (is.matrix(sd$exp)) rowSums(sd$exp) else sd$exp
  for (g in seq_along(obs)) {
    add(case, paste0("n_", g), sd$n[g])
    add(case, paste0("observed_", g), obs[g])
    add(case, paste0("expected_", g), ex[g])
    for (h in seq_along(obs)) add(case, paste0("var_", g, "_", h), sd$var[g, h])
  }
  add(case, "chisq", sd$chisq)
  add(case, "df", length(obs) - 1L)
  add(case, "p_value", pchisq(sd$chisq, length(obs) - 1L, lower.tail = FALSE))
}
lung_s <- lung_d[!is.na(lung_d$ph_ecog), ]
add_logrank("logrank_lung_sex", survdiff(Surv(time, status) ~ sex, data = lung_d))
add_logrank("logrank_lung_sex_strata_ecog",
            survdiff(Surv(time, status) ~ sex + strata(ph_ecog), data = lung_s))
add_logrank("logrank_veteran_trt", survdiff(Surv(time, status) ~ trt, data = vet_d))
add_logrank("logrank_veteran_trt_strata_celltype",
            survdiff(Surv(time, status) ~ trt + strata(celltype), data = vet_d))
vet_f <- vet_d
vet_f$celltype <- factor(vet_f$celltype, levels = celltype_levels)
add_logrank("logrank_veteran_celltype",
            survdiff(Surv(time, status) ~ celltype, data = vet_f))

# ----------------------------------------------------------------- Cox ----
add_cox <- function(case, fit) {
  s <- summary(fit)
  co <- s$coefficients
  ci <- s$conf.int
  for (j in seq_len(nrow(co))) {
    add(case, paste0("coef_", j), co[j, "coef"])
    add(case, paste0("hr_", j), co[j, "exp(coef)"])
    add(case, paste0("se_", j), co[j, "se(coef)"])
    add(case, paste0("z_", j), co[j, "z"])
    add(case, paste0("p_", j), co[j, "Pr(>|z|)"])
    add(case, paste0("lower_", j), ci[j, "lower .95"])
    add(case, paste0("upper_", j), ci[j, "upper .95"])
    for (h in seq_len(nrow(co))) add(case, paste0("var_", j, "_", h), fit$var[j, h])
  }
  add(case, "n", fit$n)
  add(case, "n_events", fit$nevent)
  add(case, "loglik_null", fit$loglik[1L])
  add(case, "loglik", fit$loglik[2L])
  add(case, "lr", s$logtest[["test"]])
  add(case, "lr_df", s$logtest[["df"]])
  add(case, "lr_p", s$logtest[["pvalue"]])
  # summary.coxph rounds the Wald statistic to 2 decimals; fit$wald.test is
  # the unrounded value (its p-value is computed from it).
  add(case, "wald", fit$wald.test)
  add(case, "wald_p", s$waldtest[["pvalue"]])
  add(case, "score", s$sctest[["test"]])
  add(case, "score_p", s$sctest[["pvalue"]])
  add(case, "iter", fit$iter)
}
for (ties in c("efron", "breslow")) {
  add_cox(paste0("cox_lung_sex_", ties),
          coxph(Surv(time, status) ~ factor(sex), data = lung_d, ties = ties))
  add_cox(paste0("cox_lung_sex_strata_ecog_", ties),
          coxph(Surv(time, status) ~ factor(sex) + strata(ph_ecog), data = lung_s,
                ties = ties))
  add_cox(paste0("cox_veteran_trt_", ties),
          coxph(Surv(time, status) ~ factor(trt), data = vet_d, ties = ties))
  add_cox(paste0("cox_veteran_trt_strata_celltype_", ties),
          coxph(Surv(time, status) ~ factor(trt) + strata(celltype), data = vet_d,
                ties = ties))
  add_cox(paste0("cox_veteran_celltype_", ties),
          coxph(Surv(time, status) ~ celltype, data = vet_f, ties = ties))
}

# --------------------------------------------------------- contingency ----
tab_of <- function(r) matrix(c(r$a, r$c, r$b, r$d), 2L) # rows = groups
sum_tables <- function(set) {
  s <- tables[tables$set == set, ]
  list(a = sum(s$a), b = sum(s$b), c = sum(s$c), d = sum(s$d))
}
# Newcombe (1998) method 10: hybrid score interval for p1 - p2 from the
# Wilson (score, no continuity correction) limits of each proportion.
newcombe <- function(x1, n1, x2, n2, conf.level = 0.95) {
  # prop.test warns about small expected counts; only its interval is used.
  w1 <- suppressWarnings(prop.test(x1, n1, correct = FALSE, conf.level = conf.level))$conf.int
  w2 <- suppressWarnings(prop.test(x2, n2, correct = FALSE, conf.level = conf.level))$conf.int
  p1 <- x1 / n1
  p2 <- x2 / n2
  d <- p1 - p2
  c(d, d - sqrt((p1 - w1[1])^2 + (w2[2] - p2)^2), d + sqrt((w1[2] - p1)^2 + (p2 - w2[1])^2))
}
# Odds ratio with a Wald interval on the log scale (textbook formula);
# `add` = 0.5 is the Haldane-Anscombe correction used when a cell is zero.
or_wald <- function(a, b, c, d, add = 0, conf.level = 0.95) {
  a <- a + add; b <- b + add; c <- c + add; d <- d + add
  lor <- log(a * d / (b * c))
  se <- sqrt(1 / a + 1 / b + 1 / c + 1 / d)
  z <- qnorm((1 + conf.level) / 2)
  c(exp(lor), lor, se, lor / se, 2 * pnorm(-abs(lor / se)), exp(lor - z * se), exp(lor + z * se))
}
add_props <- function(case, x, n) {
  w <- suppressWarnings(prop.test(x, n, correct = FALSE))$conf.int
  cp <- binom.test(x, n)$conf.int
  add(case, "estimate", x / n)
  add(case, "wilson_lower", w[1L])
  add(case, "wilson_upper", w[2L])
  add(case, "cp_lower", cp[1L])
  add(case, "cp_upper", cp[2L])
}
add_2x2 <- function(case, r, wald = TRUE) {
  x <- tab_of(r)
  add_props(paste0(case, "_group1"), r$a, r$a + r$b)
  add_props(paste0(case, "_group2"), r$c, r$c + r$d)
  nd <- newcombe(r$a, r$a + r$b, r$c, r$c + r$d)
  add(case, "rd_estimate", nd[1L])
  add(case, "rd_lower", nd[2L])
  add(case, "rd_upper", nd[3L])
  if (wald) {
    o <- or_wald(r$a, r$b, r$c, r$d)
    for (i in seq_along(o)) {
      add(case, c("or", "log_or", "or_se_log", "or_z", "or_p", "or_lower", "or_upper")[i], o[i])
    }
  }
  f <- fisher.test(x)
  add(case, "fisher_p", f$p.value)
  add(case, "fisher_or", f$estimate)
  add(case, "fisher_lower", f$conf.int[1L])
  add(case, "fisher_upper", f$conf.int[2L])
  for (alt in c("less", "greater")) {
    f <- fisher.test(x, alternative = alt, conf.level = 0.9)
    add(case, paste0("fisher_", alt, "_p"), f$p.value)
    add(case, paste0("fisher_", alt, "_lower"), f$conf.int[1L])
    add(case, paste0("fisher_", alt, "_upper"), f$conf.int[2L])
  }
  if (all(rowSums(x) > 0) && all(colSums(x) > 0)) {
    for (corr in c(FALSE, TRUE)) {
      h <- suppressWarnings(chisq.test(x, correct = corr))
      nm <- if (corr) "chisq_yates" else "chisq"
      add(case, nm, h$statistic)
      add(case, paste0(nm, "_p"), h$p.value)
    }
  }
}
for (set in c("ucb", "esoph", "infert")) {
  s <- tables[tables$set == set, ]
  for (i in seq_len(nrow(s))) {
    r <- s[i, ]
    has_zero <- any(c(r$a, r$b, r$c, r$d) == 0)
    add_2x2(paste0("tab_", set, "_", r$stratum), r, wald = !has_zero)
    if (has_zero) {
      o <- or_wald(r$a, r$b, r$c, r$d, add = 0.5)
      add(paste0("tab_", set, "_", r$stratum), "or_haldane", o[1L])
      add(paste0("tab_", set, "_", r$stratum), "or_haldane_lower", o[6L])
      add(paste0("tab_", set, "_", r$stratum), "or_haldane_upper", o[7L])
    }
  }
  add_2x2(paste0("tab_", set, "_pooled"), sum_tables(set))
}

add_cmh <- function(case, arr, ...) {
  h <- mantelhaen.test(arr, ...)
  add(case, "statistic", h$statistic)
  add(case, "p_value", h$p.value)
  add(case, "estimate", h$estimate)
  add(case, "lower", h$conf.int[1L])
  add(case, "upper", h$conf.int[2L])
}
arr_of <- function(set, drop = character()) {
  s <- tables[tables$set == set & !(tables$stratum %in% drop), ]
  array(unlist(lapply(seq_len(nrow(s)), function(i) tab_of(s[i, ]))),
        dim = c(2L, 2L, nrow(s)))
}
# R's own example: mantelhaen.test(UCBAdmissions). The statistic and odds
# ratio are invariant to transposing each 2x2 table, so it equals the
# group-by-outcome layout used here. R's help notes that the common odds
# ratio is questionable here (Dept A's odds ratio differs), hence the
# case without Dept A.
add_cmh("cmh_ucb_datasets", datasets::UCBAdmissions)
add_cmh("cmh_ucb", arr_of("ucb"))
add_cmh("cmh_ucb_uncorrected", arr_of("ucb"), correct = FALSE)
add_cmh("cmh_ucb_without_A", arr_of("ucb", "A"))
add_cmh("cmh_ucb_less90", arr_of("ucb"), alternative = "less", conf.level = 0.9)
add_cmh("cmh_ucb_greater90", arr_of("ucb"), alternative = "greater", conf.level = 0.9)
add_cmh("cmh_esoph", arr_of("esoph"))
add_cmh("cmh_infert", arr_of("infert"))

add_binom <- function(case, x, n, p, alternative = "two.sided", conf.level = 0.95) {
  h <- binom.test(x, n, p, alternative = alternative, conf.level = conf.level)
  add(case, "estimate", h$estimate)
  add(case, "p_value", h$p.value)
  add(case, "lower", h$conf.int[1L])
  add(case, "upper", h$conf.int[2L])
}
ucb_f <- sum_tables("ucb")
# Female admission rate against a 35 % benchmark (x < n p).
add_binom("binom_ucb_female_35", ucb_f$c, ucb_f$c + ucb_f$d, 0.35)
add_binom("binom_ucb_female_35_less", ucb_f$c, ucb_f$c + ucb_f$d, 0.35, "less", 0.9)
add_binom("binom_ucb_female_35_greater", ucb_f$c, ucb_f$c + ucb_f$d, 0.35, "greater", 0.9)
# infert was sampled with two controls per case: cases against 1/3 (x > n p).
add_binom("binom_infert_cases_third", sum(inf$case), nrow(inf), 1 / 3)
# Smallest education group: 4 cases of 12, exactly n p (p-value 1).
small <- inf[inf$education == "0-5yrs", ]
add_binom("binom_infert_0_5yrs_third", sum(small$case), nrow(small), 1 / 3)
# Dept A women: 89 of 108 admitted against 80 %.
add_binom("binom_ucb_A_female_80", ucb["Admitted", "Female", "A"],
          sum(ucb[, "Female", "A"]), 0.8)

# -------------------------------------------------------------- ANCOVA ----
fev <- read.csv(fev_path, stringsAsFactors = FALSE, na.strings = "NA")
v4 <- fev[fev$AVISIT == "VIS4" & !is.na(fev$FEV1) & !is.na(fev$FEV1_BL), ]
v4$CHG <- v4$FEV1 - v4$FEV1_BL
v4$ARMCD <- factor(v4$ARMCD, levels = c("PBO", "TRT"))
v4$SEX <- factor(v4$SEX, levels = c("Male", "Female"))
v4$RACE <- factor(v4$RACE, levels = c("Asian", "Black or African American", "White"))
emm_options(opt.digits = FALSE)
add_ancova <- function(case, formula, ref = 1L) {
  fit <- lm(formula, data = v4)
  s <- summary(fit)
  co <- s$coefficients
  for (j in seq_len(nrow(co))) {
    nm <- rownames(co)[j]
    add(case, paste0("coef[", nm, "]_estimate"), co[j, 1L])
    add(case, paste0("coef[", nm, "]_se"), co[j, 2L])
    add(case, paste0("coef[", nm, "]_t"), co[j, 3L])
    add(case, paste0("coef[", nm, "]_p"), co[j, 4L])
  }
  add(case, "n", nrow(v4))
  add(case, "df_residual", fit$df.residual)
  add(case, "sigma", s$sigma)
  emm <- emmeans(fit, ~ARMCD)
  es <- as.data.frame(summary(emm))
  for (i in seq_len(nrow(es))) {
    lv <- as.character(es$ARMCD[i])
    add(case, paste0("lsmean[", lv, "]_estimate"), es$emmean[i])
    add(case, paste0("lsmean[", lv, "]_se"), es$SE[i])
    add(case, paste0("lsmean[", lv, "]_df"), es$df[i])
    add(case, paste0("lsmean[", lv, "]_lower"), es$lower.CL[i])
    add(case, paste0("lsmean[", lv, "]_upper"), es$upper.CL[i])
  }
  ct <- as.data.frame(summary(contrast(emm, method = "trt.vs.ctrl", ref = ref,
                                       adjust = "none"),
                              infer = c(TRUE, TRUE)))
  for (i in seq_len(nrow(ct))) {
    lb <- paste0("diff[", gsub(" ", "", as.character(ct$contrast[i])), "]_")
    add(case, paste0(lb, "estimate"), ct$estimate[i])
    add(case, paste0(lb, "se"), ct$SE[i])
    add(case, paste0(lb, "df"), ct$df[i])
    add(case, paste0(lb, "t"), ct$t.ratio[i])
    add(case, paste0(lb, "p"), ct$p.value[i])
    add(case, paste0(lb, "lower"), ct$lower.CL[i])
    add(case, paste0(lb, "upper"), ct$upper.CL[i])
  }
}
add_ancova("ancova_vis4_base_arm", CHG ~ FEV1_BL + ARMCD)
add_ancova("ancova_vis4_base_arm_sex", CHG ~ FEV1_BL + ARMCD + SEX)
add_ancova("ancova_vis4_base_arm_sex_race", CHG ~ FEV1_BL + ARMCD + SEX + RACE)
add_ancova("ancova_vis4_base_arm_sex_race_ref_trt", CHG ~ FEV1_BL + ARMCD + SEX + RACE,
           ref = 2L)

write.csv(data.frame(case = out$case, quantity = out$quantity, value = out$value),
          out_path, row.names = FALSE, quote = TRUE)
