# R oracle for pipelines/cart_transplant.toml (seed 003), run by tests/seed_cart_transplant.rs.
# Usage: Rscript seed_cart_transplant.R adrs.csv adtte.csv out.csv
# adrs.csv: USUBJID, PARAMCD, AVISIT, AVALC; adtte.csv: PARAMCD, AVAL, CNSR, STRAT1.
# Writes method,paramcd,avisit,group,quantity,value (group is trialpipe's GROUP text).
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
adrs <- read.csv(args[1], stringsAsFactors = FALSE, na.strings = "")
adtte <- read.csv(args[2], stringsAsFactors = FALSE, na.strings = "")
arm <- "CAR-T, then allogeneic BMT"
out <- list()
put <- function(method, paramcd, avisit, group, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(method = method, paramcd = paramcd, avisit = avisit,
    group = group, quantity = quantity, value = format(value, digits = 17))
}
# Complete remission rate per visit: exact binomial test against the 90% benchmark.
for (v in c("DAY 28", "WEEK 12")) {
  d <- adrs[adrs$PARAMCD == "CR" & adrs$AVISIT == v & !is.na(adrs$AVALC), ]
  x <- sum(d$AVALC == "Y"); n <- nrow(d)
  b <- binom.test(x, n, p = 0.9)
  put("binomial_exact", "CR", v, arm, "n", n)
  put("binomial_exact", "CR", v, arm, "estimate", unname(b$estimate))
  put("binomial_exact", "CR", v, arm, "statistic", unname(b$statistic))
  put("binomial_exact", "CR", v, arm, "p_value", b$p.value)
  put("binomial_exact", "CR", v, arm, "lcl", b$conf.int[1])
  put("binomial_exact", "CR", v, arm, "ucl", b$conf.int[2])
}
# Disease-free survival by remission stratum.
d <- adtte[adtte$PARAMCD == "DFS", ]
d$S <- factor(d$STRAT1, levels = c("CR1", "CR2", "CR3/NR"))
d$EV <- as.integer(d$CNSR == 0)
lab <- function(l) paste("remission_status =", l)
km <- survfit(Surv(AVAL, EV) ~ S, data = d)
tab <- summary(km)$table
for (l in levels(d$S)) {
  row <- tab[paste0("S=", l), ]
  put("km_median", "DFS", "", lab(l), "n", unname(row["records"]))
  if (!is.na(row["median"])) put("km_median", "DFS", "", lab(l), "estimate", unname(row["median"]))
  if (!is.na(row["0.95LCL"])) put("km_median", "DFS", "", lab(l), "lcl", unname(row["0.95LCL"]))
  s <- summary(km[paste0("S=", l)], times = c(12, 24, 36) * 30.4375)
  for (i in seq_along(s$time)) {
    put("km_survival", "DFS", paste("MONTH", c(12, 24, 36)[i]), lab(l), "estimate", s$surv[i])
    put("km_survival", "DFS", paste("MONTH", c(12, 24, 36)[i]), lab(l), "lcl", s$lower[i])
    put("km_survival", "DFS", paste("MONTH", c(12, 24, 36)[i]), lab(l), "ucl", s$upper[i])
  }
}
lr <- survdiff(Surv(AVAL, EV) ~ S, data = d)
g <- paste(paste(lab(c("CR2", "CR3/NR")), "-", lab("CR1")), collapse = "; ")
put("log_rank", "DFS", "", g, "statistic", lr$chisq)
put("log_rank", "DFS", "", g, "df", length(lr$n) - 1)
put("log_rank", "DFS", "", g, "p_value", pchisq(lr$chisq, length(lr$n) - 1, lower.tail = FALSE))
cx <- coxph(Surv(AVAL, EV) ~ S, data = d, ties = "efron")
sm <- summary(cx)
for (i in 1:2) {
  l <- c("CR2", "CR3/NR")[i]
  grp <- paste(lab(l), "-", lab("CR1"))
  put("cox_hr", "DFS", "", grp, "estimate", unname(exp(coef(cx))[i]))
  put("cox_hr", "DFS", "", grp, "se", unname(sqrt(diag(vcov(cx)))[i]))
  put("cox_hr", "DFS", "", grp, "p_value", unname(sm$coefficients[i, 5]))
  put("cox_hr", "DFS", "", grp, "lcl", unname(sm$conf.int[i, 3]))
  put("cox_hr", "DFS", "", grp, "ucl", unname(sm$conf.int[i, 4]))
}
write.csv(do.call(rbind, out), args[3], row.names = FALSE)
