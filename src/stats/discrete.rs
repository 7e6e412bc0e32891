//! Binomial and hypergeometric probabilities computed as R's `nmath` does
//! (Loader's saddle-point `dbinom_raw`, `dhyper` from three binomial
//! densities), the beta quantile behind Clopper-Pearson intervals, and the
//! chi-square and normal upper tails used for p-values.
//!
//! Loader, C. (2000). Fast and accurate computation of binomial
//! probabilities. Technical report, Bell Labs.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use statrs::function::beta::beta_reg;
use statrs::function::erf::erfc;
use statrs::function::gamma::ln_gamma;

use super::error::StatsError;

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// `log(n!) - log(sqrt(2 pi n) (n / e)^n)`, R's `stirlerr`. The constants
/// are R's (`nmath/stirlerr.c`), kept digit for digit.
#[allow(clippy::excessive_precision)]
fn stirlerr(n: f64) -> f64 {
    const S0: f64 = 0.083_333_333_333_333_333_33;
    const S1: f64 = 0.002_777_777_777_777_777_777_78;
    const S2: f64 = 0.000_793_650_793_650_793_650_793_65;
    const S3: f64 = 0.000_595_238_095_238_095_238_095_238;
    const S4: f64 = 0.000_841_750_841_750_841_750_841_750_8;
    const SFERR_HALVES: [f64; 31] = [
        0.0,
        0.153_426_409_720_027_345_291_384_8,
        0.081_061_466_795_327_258_219_670_2,
        0.054_814_121_051_917_653_896_139_0,
        0.041_340_695_955_409_294_093_822_1,
        0.033_162_873_519_936_287_485_110_48,
        0.027_677_925_684_998_339_148_789_29,
        0.023_746_163_656_297_495_971_329_20,
        0.020_790_672_103_765_093_111_522_77,
        0.018_488_450_532_673_185_230_779_34,
        0.016_644_691_189_821_192_163_194_87,
        0.015_134_973_221_917_378_873_512_55,
        0.013_876_128_823_070_747_998_745_73,
        0.012_810_465_242_920_226_924_249_86,
        0.011_896_709_945_891_770_095_055_72,
        0.011_104_559_758_206_917_326_629_91,
        0.010_411_265_261_972_096_497_478_567,
        0.009_799_416_126_158_803_298_389_475,
        0.009_255_462_182_712_732_917_728_637,
        0.008_768_700_134_139_385_462_952_823,
        0.008_330_563_433_362_871_256_469_318,
        0.007_934_114_564_314_020_547_248_100,
        0.007_573_675_487_951_840_794_972_024,
        0.007_244_554_301_320_383_179_543_912,
        0.006_942_840_107_209_529_865_664_152,
        0.006_665_247_032_707_682_442_354_394,
        0.006_408_994_188_004_207_068_439_631,
        0.006_171_712_263_039_457_647_532_867,
        0.005_951_370_112_758_847_735_624_416,
        0.005_746_216_513_010_115_682_023_589,
        0.005_554_733_551_962_801_371_038_690,
    ];
    if n <= 15.0 {
        let nn = n + n;
        if nn == nn.trunc() {
            return SFERR_HALVES[nn as usize];
        }
        return ln_gamma(n + 1.0) - (n + 0.5) * n.ln() + n - LN_SQRT_2PI;
    }
    let nn = n * n;
    if n > 500.0 {
        (S0 - S1 / nn) / n
    } else if n > 80.0 {
        (S0 - (S1 - S2 / nn) / nn) / n
    } else if n > 35.0 {
        (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n
    } else {
        (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
    }
}

/// Deviance term `x log(x / np) + np - x`, R's `bd0`.
fn bd0(x: f64, np: f64) -> f64 {
    if (x - np).abs() < 0.1 * (x + np) {
        let mut v = (x - np) / (x + np);
        let mut s = (x - np) * v;
        if s.abs() < f64::MIN_POSITIVE {
            return s;
        }
        let mut ej = 2.0 * x * v;
        v *= v;
        for j in 1..1000 {
            ej *= v;
            let s1 = s + ej / f64::from(2 * j + 1);
            if s1 == s {
                return s1;
            }
            s = s1;
        }
    }
    x * (x / np).ln() + np - x
}

/// `log dbinom(x, n, p)` with `q = 1 - p` given separately, R's
/// `dbinom_raw(..., give_log = TRUE)`. `x` and `n` are whole numbers.
pub(crate) fn ldbinom_raw(x: f64, n: f64, p: f64, q: f64) -> f64 {
    if p == 0.0 {
        return if x == 0.0 { 0.0 } else { f64::NEG_INFINITY };
    }
    if q == 0.0 {
        return if x == n { 0.0 } else { f64::NEG_INFINITY };
    }
    if x == 0.0 {
        if n == 0.0 {
            return 0.0;
        }
        return if p < 0.1 {
            -bd0(n, n * q) - n * p
        } else {
            n * q.ln()
        };
    }
    if x == n {
        return if q < 0.1 {
            -bd0(n, n * p) - n * q
        } else {
            n * p.ln()
        };
    }
    if x < 0.0 || x > n {
        return f64::NEG_INFINITY;
    }
    let lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, n * p) - bd0(n - x, n * q);
    let lf = LN_2PI + x.ln() + (-x / n).ln_1p();
    lc - 0.5 * lf
}

/// `dbinom(x, n, p)`.
pub(crate) fn dbinom(x: u64, n: u64, p: f64) -> f64 {
    ldbinom_raw(x as f64, n as f64, p, 1.0 - p).exp()
}

/// `pbinom(x, n, p)` = `P(X <= x)` (by summing the densities; 0 for `x < 0`).
pub(crate) fn pbinom_lower(x: i64, n: u64, p: f64) -> f64 {
    if x < 0 {
        return 0.0;
    }
    let x = (x as u64).min(n);
    if x == n {
        return 1.0;
    }
    // Sum the shorter side for accuracy.
    if (x as f64) < n as f64 * p {
        (0..=x).map(|k| dbinom(k, n, p)).sum::<f64>().min(1.0)
    } else {
        (1.0 - ((x + 1)..=n).map(|k| dbinom(k, n, p)).sum::<f64>()).max(0.0)
    }
}

/// `pbinom(x, n, p, lower.tail = FALSE)` = `P(X > x)`.
pub(crate) fn pbinom_upper(x: i64, n: u64, p: f64) -> f64 {
    if x < 0 {
        return 1.0;
    }
    let x = x as u64;
    if x >= n {
        return 0.0;
    }
    if (x as f64) >= n as f64 * p {
        ((x + 1)..=n).map(|k| dbinom(k, n, p)).sum::<f64>().min(1.0)
    } else {
        (1.0 - (0..=x).map(|k| dbinom(k, n, p)).sum::<f64>()).max(0.0)
    }
}

/// `dhyper(x, r, b, n, log = TRUE)`: `x` white balls in a sample of `n` from
/// an urn with `r` white and `b` black balls, as R computes it.
pub(crate) fn ldhyper(x: f64, r: f64, b: f64, n: f64) -> f64 {
    if n < x || r < x || n - x > b {
        return f64::NEG_INFINITY;
    }
    if n == 0.0 {
        return if x == 0.0 { 0.0 } else { f64::NEG_INFINITY };
    }
    let p = n / (r + b);
    let q = (r + b - n) / (r + b);
    ldbinom_raw(x, r, p, q) + ldbinom_raw(n - x, b, p, q) - ldbinom_raw(n, r + b, p, q)
}

/// `qbeta(p, a, b)` for `0 < p < 1`: the root of `I_x(a, b) = p`, by
/// bisection refined to full double precision (the regularised incomplete
/// beta function is from `statrs`).
pub(crate) fn qbeta(p: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    // Bisection: I_x is increasing in x. 200 halvings exhaust f64.
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if beta_reg(a, b, mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Upper tail of the chi-square distribution, `pchisq(x, df, lower.tail = FALSE)`.
/// One degree of freedom goes through `erfc` so that tiny p-values keep
/// their relative accuracy.
pub(crate) fn chisq_sf(x: f64, df: f64) -> Result<f64, StatsError> {
    if x <= 0.0 {
        return Ok(1.0);
    }
    if df == 1.0 {
        return Ok(erfc((x / 2.0).sqrt()));
    }
    let dist = ChiSquared::new(df).map_err(|_| StatsError::InvalidInput {
        what: "degrees of freedom",
        reason: format!("{df} is not positive"),
    })?;
    Ok(dist.sf(x))
}

/// Standard normal upper tail `P(Z > z)`.
pub(crate) fn norm_sf(z: f64) -> f64 {
    std_normal().sf(z)
}

/// Standard normal quantile `qnorm(p)`.
pub(crate) fn qnorm(p: f64) -> f64 {
    std_normal().inverse_cdf(p)
}

fn std_normal() -> Normal {
    Normal::standard()
}

/// Two-sided normal p-value `2 P(Z > |z|)`.
pub(crate) fn norm_two_sided(z: f64) -> f64 {
    2.0 * norm_sf(z.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs())
    }

    #[test]
    fn binomial_density_matches_r() {
        // R: dbinom(3, 10, 0.3); dbinom(0, 50, 0.02); dbinom(557, 1835, 0.35)
        assert!(close(dbinom(3, 10, 0.3), 0.266_827_931_999_999_93, 1e-14));
        assert!(close(dbinom(0, 50, 0.02), 0.364_169_680_087_117_1, 1e-14));
        assert!(close(
            dbinom(557, 1835, 0.35),
            2.754_501_159_782_178e-6,
            1e-12
        ));
        // R: pbinom(3, 10, 0.3); pbinom(3, 10, 0.3, lower.tail = FALSE)
        assert!(close(
            pbinom_lower(3, 10, 0.3),
            0.649_610_718_400_000_2,
            1e-13
        ));
        assert!(close(
            pbinom_upper(3, 10, 0.3),
            0.350_389_281_599_999_77,
            1e-13
        ));
    }

    #[test]
    fn hypergeometric_log_density_matches_r() {
        // R: dhyper(2, 5, 7, 4, log = TRUE)
        assert!(close(
            ldhyper(2.0, 5.0, 7.0, 4.0),
            -0.857_450_231_851_221_4,
            1e-14
        ));
        assert_eq!(ldhyper(5.0, 5.0, 7.0, 4.0), f64::NEG_INFINITY);
    }

    #[test]
    fn beta_quantile_matches_r() {
        // R: qbeta(0.025, 4, 9); qbeta(0.975, 5, 8)
        assert!(close(
            qbeta(0.025, 4.0, 9.0),
            0.099_246_091_149_583_26,
            1e-12
        ));
        assert!(close(qbeta(0.975, 5.0, 8.0), 0.651_124_493_581_186, 1e-12));
    }

    #[test]
    fn chisq_tail() {
        // R: pchisq(92.2, 1, lower.tail = FALSE); pchisq(7.3, 3, lower.tail = FALSE)
        assert!(close(
            chisq_sf(92.2, 1.0).unwrap(),
            7.834_476_873_020_237e-22,
            1e-10
        ));
        assert!(close(
            chisq_sf(7.3, 3.0).unwrap(),
            0.062_926_236_459_043_18,
            1e-10
        ));
    }
}
