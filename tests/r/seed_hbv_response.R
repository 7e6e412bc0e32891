# R oracle for pipelines/hbv_response.toml (seed 000), run by tests/seed_hbv_response.rs.
# Usage: Rscript seed_hbv_response.R adlb.csv flags.csv out.csv
# adlb.csv: USUBJID, ARMCD, PARAMCD, AVISIT, ANL01FL, ABLFL, AVAL, AVALC, CHG, ANRHI.
# Recomputes every response rule of the pipeline per subject and post-baseline visit from ADLB
# with R's three-valued logic (NA & FALSE is FALSE, NA | TRUE is TRUE, !NA is NA) and writes them
# to flags.csv (USUBJID, PARAMCD, AVISIT, AVALC = Y, N or empty); from these flags, the responder
# proportions (Wilson via prop.test without correction, Clopper-Pearson via binom.test) per arm
# and Fisher's exact test between arms go to out.csv (method,paramcd,avisit,group,quantity,value).
args <- commandArgs(trailingOnly = TRUE)
adlb <- read.csv(args[1], stringsAsFactors = FALSE, na.strings = "")
visits <- c("WEEK 12", "WEEK 24", "WEEK 48")
lab <- c(CELL = "Cell therapy + antiviral", NUC = "Antiviral alone")
contrast_label <- paste(lab["CELL"], "-", lab["NUC"])
a <- adlb[!is.na(adlb$ANL01FL) & adlb$ANL01FL == "Y" & adlb$AVISIT %in% visits, ]
b <- adlb[!is.na(adlb$ABLFL) & adlb$ABLFL == "Y", ]
key <- function(u, v, p) paste(u, v, p, sep = "|")
ak <- key(a$USUBJID, a$AVISIT, a$PARAMCD)
bk <- paste(b$USUBJID, b$PARAMCD, sep = "|")
cells <- unique(a[, c("USUBJID", "AVISIT")])
get <- function(col, p) a[[col]][match(key(cells$USUBJID, cells$AVISIT, p), ak)]
arm <- a$ARMCD[match(cells$USUBJID, a$USUBJID)]
alt <- get("AVAL", "ALT"); uln <- get("ANRHI", "ALT")
dna <- get("AVAL", "HBVDNA"); dchg <- get("CHG", "HBVDNA")
e <- get("AVALC", "HBEAG"); ae <- get("AVALC", "ANTIHBE"); s <- get("AVALC", "HBSAG")
be <- b$AVALC[match(paste(cells$USUBJID, "HBEAG", sep = "|"), bk)]
f <- list()
f$BIOCHEM <- alt <= uln
f$BIOIMP <- alt <= 2 * uln
f$VIRCURE <- dna < 5
f$VIR50 <- dchg <= -0.30103
f$ESEROCON <- be == "POSITIVE" & e == "NEGATIVE" & ae == "POSITIVE"
f$SEROCURE <- e == "NEGATIVE" & ae == "POSITIVE"
f$CR <- s == "NEGATIVE" & f$BIOCHEM & f$VIRCURE
f$CURE <- f$BIOCHEM & f$VIRCURE & f$SEROCURE
f$IMPROVE <- !f$CURE & f$BIOIMP & f$VIR50
f$NORESP <- !f$CURE & !f$IMPROVE
yn <- function(x) ifelse(is.na(x), "", ifelse(x, "Y", "N"))
rows <- lapply(names(f), function(id) data.frame(USUBJID = cells$USUBJID, PARAMCD = id,
  AVISIT = cells$AVISIT, AVALC = yn(f[[id]])))
write.csv(do.call(rbind, rows), args[2], row.names = FALSE)

out <- list()
put <- function(method, paramcd, avisit, group, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(method = method, paramcd = paramcd, avisit = avisit,
    group = group, quantity = quantity, value = format(value, digits = 17))
}
for (id in c("CURE", "IMPROVE", "NORESP", "CR", "ESEROCON", "BIOCHEM", "VIRCURE", "VIR50")) {
  for (v in visits) {
    x <- c(); n <- c()
    for (k in c("CELL", "NUC")) {
      sel <- cells$AVISIT == v & arm == k & !is.na(f[[id]])
      x[k] <- sum(f[[id]][sel]); n[k] <- sum(sel)
      w <- suppressWarnings(prop.test(x[k], n[k], correct = FALSE))$conf.int
      put("proportion_wilson", id, v, lab[k], "n", n[k])
      put("proportion_wilson", id, v, lab[k], "estimate", x[k] / n[k])
      put("proportion_wilson", id, v, lab[k], "lcl", w[1])
      put("proportion_wilson", id, v, lab[k], "ucl", w[2])
      cp <- binom.test(x[k], n[k])$conf.int
      put("proportion_clopper_pearson", id, v, lab[k], "lcl", cp[1])
      put("proportion_clopper_pearson", id, v, lab[k], "ucl", cp[2])
    }
    tab <- matrix(c(x["CELL"], n["CELL"] - x["CELL"], x["NUC"], n["NUC"] - x["NUC"]), 2, byrow = TRUE)
    put("fisher_exact_or", id, v, contrast_label, "p_value", fisher.test(tab)$p.value)
  }
}
write.csv(do.call(rbind, out), args[3], row.names = FALSE)
