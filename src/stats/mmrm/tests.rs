//! Unit tests of the MMRM engine on simulated data: analytic derivatives
//! against finite differences, storage equivalence, design coding, edge
//! cases and the fallback chain. The comparison with SAS and R is in
//! `tests/mmrm_vs_sas.rs`.

use super::likelihood::{Order, Problem};
use super::*;

/// Small deterministic generator (SplitMix64) with Box-Muller normals.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Simulated trial: `n` subjects, `t` visits, two arms, a baseline
/// covariate, AR-like correlation, monotone dropout plus a few
/// intermittent gaps.
struct Sim {
    y: Vec<f64>,
    subject: Vec<usize>,
    visit: Vec<usize>,
    arm: Vec<usize>,
    base: Vec<f64>,
    t: usize,
}

fn simulate(n: usize, t: usize, seed: u64) -> Sim {
    let mut rng = Rng(seed);
    let mut sim = Sim {
        y: Vec::new(),
        subject: Vec::new(),
        visit: Vec::new(),
        arm: Vec::new(),
        base: Vec::new(),
        t,
    };
    for s in 0..n {
        let arm = s % 2;
        let base = 40.0 + 5.0 * rng.normal();
        let subject_effect = 3.0 * rng.normal();
        let mut prev = 0.0;
        let dropout = if rng.uniform() < 0.3 {
            1 + (rng.next_u64() as usize) % t
        } else {
            t
        };
        for v in 0..t {
            let e = 0.6 * prev + 2.5 * rng.normal() * (1.0 + 0.2 * v as f64);
            prev = e;
            let mean = 2.0 + 0.5 * base + 1.5 * v as f64 + 0.8 * (arm * v) as f64;
            let missing = v >= dropout || rng.uniform() < 0.05;
            sim.y.push(if missing {
                f64::NAN
            } else {
                mean + subject_effect + e
            });
            sim.subject.push(1000 + s);
            sim.visit.push(v);
            sim.arm.push(arm);
            sim.base.push(base);
        }
    }
    sim
}

const VIS: [&str; 10] = [
    "VIS1", "VIS2", "VIS3", "VIS4", "VIS5", "VIS6", "VIS7", "VIS8", "VIS9", "VIS10",
];
const ARMS: [&str; 2] = ["PBO", "TRT"];

/// `sim_data!(data, sim)` binds `data: MmrmData` for the simulated trial.
macro_rules! sim_data {
    ($data:ident, $sim:expr) => {
        let factors = [
            Factor {
                name: "AVISIT",
                levels: &VIS[..$sim.t],
                codes: &$sim.visit,
            },
            Factor {
                name: "ARMCD",
                levels: &ARMS,
                codes: &$sim.arm,
            },
        ];
        let covariates = [Covariate {
            name: "BASE",
            values: &$sim.base,
        }];
        let $data = MmrmData {
            response: &$sim.y,
            subject: &$sim.subject,
            factors: &factors,
            covariates: &covariates,
        };
    };
}

fn sim_terms() -> Vec<Term> {
    vec![
        Term::covariate("BASE"),
        Term::factor("ARMCD"),
        Term::factor("AVISIT"),
        Term::interaction("ARMCD", "AVISIT"),
    ]
}

fn problem(sim: &Sim, st: CovStructure, est: Estimation, storage: StoragePolicy) -> Problem {
    let spec = MmrmSpec::new(sim_terms(), "AVISIT");
    sim_data!(data, sim);
    let design = design::build_design(&data, &spec, design::RankCheck::Enforce).unwrap();
    Problem::new(&design, st, est, storage)
}

#[test]
fn gradient_and_hessian_match_finite_differences() {
    let sim = simulate(60, 4, 7);
    for st in CovStructure::ALL {
        for est in [Estimation::Reml, Estimation::Ml] {
            let pr = problem(&sim, st, est, StoragePolicy::Auto);
            let k = pr.n_theta();
            let cov = pr.moment_covariance().unwrap();
            let theta = st.initial_theta(&cov, 4, 0.1);
            let e = pr.evaluate(&theta, Order::Hessian).unwrap();
            let h = 1e-5;
            for r in 0..k {
                let mut tp = theta.clone();
                let mut tm = theta.clone();
                tp[r] += h;
                tm[r] -= h;
                let ep = pr.evaluate(&tp, Order::Gradient).unwrap();
                let em = pr.evaluate(&tm, Order::Gradient).unwrap();
                let num_g = (ep.value - em.value) / (2.0 * h);
                let scale = 1.0 + e.gradient[r].abs();
                assert!(
                    (num_g - e.gradient[r]).abs() < 1e-5 * scale,
                    "{st:?} {est:?} gradient {r}: {num_g} vs {}",
                    e.gradient[r]
                );
                for s in 0..k {
                    let num_h = (ep.gradient[s] - em.gradient[s]) / (2.0 * h);
                    let an = e.hessian[r * k + s];
                    assert!(
                        (num_h - an).abs() < 1e-5 * (1.0 + an.abs()),
                        "{st:?} {est:?} hessian {r},{s}: {num_h} vs {an}"
                    );
                }
            }
            // dΦ/dθ_r = Φ A_r Φ.
            for r in 0..k {
                let mut tp = theta.clone();
                let mut tm = theta.clone();
                tp[r] += h;
                tm[r] -= h;
                let pp = pr.evaluate(&tp, Order::Value).unwrap().phi;
                let pm = pr.evaluate(&tm, Order::Value).unwrap().phi;
                let an = &e.phi * &e.a_mats[r] * &e.phi;
                for i in 0..pr.p {
                    for j in 0..pr.p {
                        let num = (pp[(i, j)] - pm[(i, j)]) / (2.0 * h);
                        assert!((num - an[(i, j)]).abs() < 1e-6 * (1.0 + an[(i, j)].abs()));
                    }
                }
            }
        }
    }
}

#[test]
fn storage_policies_agree() {
    let sim = simulate(80, 5, 11);
    for st in [
        CovStructure::Unstructured,
        CovStructure::HeterogeneousToeplitz,
    ] {
        let a = problem(&sim, st, Estimation::Reml, StoragePolicy::Aggregated);
        let b = problem(&sim, st, Estimation::Reml, StoragePolicy::PerSubject);
        let cov = a.moment_covariance().unwrap();
        let theta = st.initial_theta(&cov, 5, 0.0);
        let ea = a.evaluate(&theta, Order::Hessian).unwrap();
        let eb = b.evaluate(&theta, Order::Hessian).unwrap();
        assert!((ea.value - eb.value).abs() < 1e-9 * ea.value.abs());
        for (x, y) in ea.beta.iter().zip(&eb.beta) {
            assert!((x - y).abs() < 1e-9 * (1.0 + x.abs()));
        }
        for (x, y) in ea.gradient.iter().zip(&eb.gradient) {
            assert!((x - y).abs() < 1e-7 * (1.0 + x.abs()));
        }
        for (x, y) in ea.hessian.iter().zip(&eb.hessian) {
            assert!((x - y).abs() < 1e-7 * (1.0 + x.abs()));
        }
        let qa = a.kr_q_matrices(&theta).unwrap();
        let qb = b.kr_q_matrices(&theta).unwrap();
        for (x, y) in qa.iter().zip(&qb) {
            for i in 0..x.nrows() {
                for j in 0..x.ncols() {
                    assert!((x[(i, j)] - y[(i, j)]).abs() < 1e-9 * (1.0 + x[(i, j)].abs()));
                }
            }
        }
    }
}

/// More subjects than one chunk of the parallel sums: the fit is the same bit
/// for bit with one thread and with three, and the per-subject storage (its
/// own chunked sums) agrees with the aggregated one to rounding.
#[test]
fn parallel_sums_do_not_depend_on_the_thread_count() {
    let sim = simulate(3 * super::parallel::CHUNK + 123, 4, 29);
    let spec = MmrmSpec::new(sim_terms(), "AVISIT").with_arm("ARMCD");
    let fit_with = |threads: usize| {
        sim_data!(data, sim);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| fit_mmrm(&data, &spec).unwrap())
    };
    let one = fit_with(1);
    let three = fit_with(3);
    assert!(one.n_subjects > 3 * super::parallel::CHUNK);
    assert_eq!(one.m2_log_lik.to_bits(), three.m2_log_lik.to_bits());
    for (a, b) in one.fixed_effects.iter().zip(&three.fixed_effects) {
        assert_eq!(a.estimate.to_bits(), b.estimate.to_bits(), "{}", a.name);
        assert_eq!(a.se.to_bits(), b.se.to_bits(), "{}", a.name);
        assert_eq!(a.df.to_bits(), b.df.to_bits(), "{}", a.name);
    }

    let st = CovStructure::Unstructured;
    let a = problem(&sim, st, Estimation::Reml, StoragePolicy::Aggregated);
    let b = problem(&sim, st, Estimation::Reml, StoragePolicy::PerSubject);
    assert!(
        b.patterns
            .iter()
            .any(|p| p.n_subjects > super::parallel::CHUNK)
    );
    let theta = one.theta.clone();
    let ea = a.evaluate(&theta, Order::Hessian).unwrap();
    let eb = b.evaluate(&theta, Order::Hessian).unwrap();
    assert!((ea.value - eb.value).abs() < 1e-10 * ea.value.abs());
    for (x, y) in ea.beta.iter().zip(&one.coefficients()) {
        assert!((x - y).abs() < 1e-12 * (1.0 + x.abs()));
    }
    for (x, y) in ea.beta.iter().zip(&eb.beta) {
        assert!((x - y).abs() < 1e-9 * (1.0 + x.abs()));
    }
    for (x, y) in ea.hessian.iter().zip(&eb.hessian) {
        assert!((x - y).abs() < 1e-7 * (1.0 + x.abs()));
    }
}

#[test]
fn fits_every_structure_and_reports_diagnostics() {
    let sim = simulate(150, 4, 3);
    sim_data!(data, sim);
    for st in CovStructure::ALL {
        let spec = MmrmSpec::new(sim_terms(), "AVISIT")
            .with_arm("ARMCD")
            .with_covariance(st);
        let fit = fit_mmrm(&data, &spec).unwrap();
        assert!(fit.convergence.converged, "{st:?}");
        assert!(fit.convergence.gradient_max_abs < 1e-4, "{st:?}");
        assert_eq!(fit.n_cov_parameters, st.n_parameters(4));
        assert_eq!(fit.theta_names.len(), fit.theta.len());
        assert_eq!(fit.lsmeans.len(), 8);
        assert_eq!(fit.arm_differences.len(), 4);
        let k = fit.n_cov_parameters as f64;
        assert!((fit.aic - (fit.m2_log_lik + 2.0 * k)).abs() < 1e-9);
        assert!((fit.bic - (fit.m2_log_lik + k * 150f64.ln())).abs() < 1e-9);
        // The covariance is symmetric positive definite.
        let mut s: Vec<f64> = fit.covariance.iter().flatten().copied().collect();
        assert!(linalg::cholesky_in_place(&mut s, 4).is_ok());
        for ddf in [
            DdfMethod::KenwardRoger,
            DdfMethod::Residual,
            DdfMethod::BetweenWithin,
        ] {
            let f2 = fit_mmrm(&data, &spec.clone().with_ddf(ddf)).unwrap();
            assert!((f2.m2_log_lik - fit.m2_log_lik).abs() < 1e-8);
            for fe in &f2.fixed_effects {
                assert!(fe.df.is_finite() && fe.df > 0.0 && fe.se > 0.0);
            }
        }
    }
}

#[test]
fn kenward_roger_one_dimensional_df_is_satterthwaite() {
    let sim = simulate(120, 3, 5);
    sim_data!(data, sim);
    let spec = MmrmSpec::new(sim_terms(), "AVISIT").with_arm("ARMCD");
    let sat = fit_mmrm(&data, &spec).unwrap();
    let kr = fit_mmrm(&data, &spec.clone().with_ddf(DdfMethod::KenwardRoger)).unwrap();
    for (a, b) in sat.fixed_effects.iter().zip(&kr.fixed_effects) {
        assert!((a.df - b.df).abs() < 1e-8 * a.df);
        assert!(b.se >= a.se * (1.0 - 1e-12), "KR inflates the variance");
    }
    // One-row F-test equals the squared t-test.
    let l = kr
        .lsmean_row(&[("AVISIT", "VIS3"), ("ARMCD", "TRT")])
        .unwrap();
    let t = kr.contrast(&l).unwrap();
    let f = kr.f_test(&[l]).unwrap();
    assert!((f.f_value - t.t * t.t).abs() < 1e-8 * f.f_value);
    assert!((f.den_df - t.df).abs() < 1e-6 * t.df);
    assert!((f.p_value - t.p_value).abs() < 1e-8);
}

#[test]
fn satterthwaite_f_test_one_row_is_t_test() {
    let sim = simulate(120, 3, 9);
    sim_data!(data, sim);
    let fit = fit_mmrm(&data, &MmrmSpec::new(sim_terms(), "AVISIT")).unwrap();
    let p = fit.fixed_effects.len();
    let mut l = vec![0.0; p];
    l[1] = 1.0;
    let t = fit.contrast(&l).unwrap();
    let f = fit.f_test(&[l.clone()]).unwrap();
    assert!((f.f_value - t.t * t.t).abs() < 1e-9 * f.f_value);
    assert!((f.den_df - t.df).abs() < 1e-9 * t.df);
    // Rank-deficient L is refused.
    assert!(matches!(
        fit.f_test(&[l.clone(), l.iter().map(|v| 2.0 * v).collect()]),
        Err(StatsError::InvalidInput { .. })
    ));
    assert!(matches!(
        fit.contrast(&[1.0]),
        Err(StatsError::InvalidInput { .. })
    ));
}

#[test]
fn design_names_and_coding_follow_r() {
    let sim = simulate(40, 3, 1);
    sim_data!(data, sim);
    // Interaction listed first: R still puts main effects first.
    let spec = MmrmSpec::new(
        vec![
            Term::interaction("ARMCD", "AVISIT"),
            Term::factor("ARMCD"),
            Term::factor("AVISIT"),
        ],
        "AVISIT",
    );
    let d = design::build_design(&data, &spec, design::RankCheck::Enforce).unwrap();
    assert_eq!(
        d.names,
        [
            "(Intercept)",
            "ARMCDTRT",
            "AVISITVIS2",
            "AVISITVIS3",
            "ARMCDTRT:AVISITVIS2",
            "ARMCDTRT:AVISITVIS3"
        ]
    );
    // Interaction without the AVISIT main effect: ARMCD by indicators.
    let spec = MmrmSpec::new(
        vec![Term::factor("ARMCD"), Term::interaction("AVISIT", "ARMCD")],
        "AVISIT",
    );
    let d = design::build_design(&data, &spec, design::RankCheck::Enforce).unwrap();
    assert_eq!(
        d.names,
        [
            "(Intercept)",
            "ARMCDTRT",
            "AVISITVIS2:ARMCDPBO",
            "AVISITVIS3:ARMCDPBO",
            "AVISITVIS2:ARMCDTRT",
            "AVISITVIS3:ARMCDTRT"
        ]
    );
    // Covariate by factor without the covariate main effect: full indicators.
    let spec = MmrmSpec::new(
        vec![Term::factor("AVISIT"), Term::interaction("BASE", "AVISIT")],
        "AVISIT",
    );
    let d = design::build_design(&data, &spec, design::RankCheck::Enforce).unwrap();
    assert_eq!(
        d.names,
        [
            "(Intercept)",
            "AVISITVIS2",
            "AVISITVIS3",
            "BASE:AVISITVIS1",
            "BASE:AVISITVIS2",
            "BASE:AVISITVIS3"
        ]
    );
    // No intercept: the first factor gets all levels.
    let mut spec = MmrmSpec::new(
        vec![Term::factor("AVISIT"), Term::factor("ARMCD")],
        "AVISIT",
    );
    spec.intercept = Intercept::Excluded;
    let d = design::build_design(&data, &spec, design::RankCheck::Enforce).unwrap();
    assert_eq!(
        d.names,
        ["AVISITVIS1", "AVISITVIS2", "AVISITVIS3", "ARMCDTRT"]
    );
    // LS-mean grid row: other factors averaged, covariates at their mean.
    let spec = MmrmSpec::new(sim_terms(), "AVISIT");
    let d = design::build_design(&data, &spec, design::RankCheck::Enforce).unwrap();
    let row = d.grid_row(&[(0, 2)]);
    let mean_base = d.covariate_means[0];
    assert_eq!(row, vec![1.0, mean_base, 0.5, 0.0, 1.0, 0.0, 0.5]);
}

#[test]
fn singular_design_is_an_error() {
    let mut sim = simulate(40, 3, 2);
    // No TRT observation at the last visit: ARMCDTRT:AVISITVIS3 is all zero.
    for i in 0..sim.y.len() {
        if sim.arm[i] == 1 && sim.visit[i] == 2 {
            sim.y[i] = f64::NAN;
        }
    }
    sim_data!(data, sim);
    let spec = MmrmSpec::new(sim_terms(), "AVISIT");
    assert!(matches!(
        fit_mmrm(&data, &spec),
        Err(StatsError::Singular { .. })
    ));
    assert_eq!(
        aliased_columns(&data, &spec).unwrap(),
        ["ARMCDTRT:AVISITVIS3"]
    );
    // A covariate identical to another one.
    let sim = simulate(40, 3, 2);
    let covariates = [
        Covariate {
            name: "BASE",
            values: &sim.base,
        },
        Covariate {
            name: "BASE2",
            values: &sim.base,
        },
    ];
    sim_data!(data0, sim);
    let data = MmrmData {
        covariates: &covariates,
        ..data0
    };
    let spec = MmrmSpec::new(
        vec![Term::covariate("BASE"), Term::covariate("BASE2")],
        "AVISIT",
    );
    assert!(matches!(
        fit_mmrm(&data, &spec),
        Err(StatsError::Singular { .. })
    ));
    assert_eq!(aliased_columns(&data, &spec).unwrap(), ["BASE2"]);
}

#[test]
fn empty_visit_is_an_error() {
    let mut sim = simulate(30, 4, 4);
    for i in 0..sim.y.len() {
        if sim.visit[i] == 1 {
            sim.y[i] = f64::NAN;
        }
    }
    sim_data!(data, sim);
    let spec = MmrmSpec::new(vec![Term::factor("ARMCD")], "AVISIT");
    assert_eq!(
        fit_mmrm(&data, &spec).unwrap_err(),
        StatsError::EmptyGroup {
            what: "visit",
            level: 1
        }
    );
}

#[test]
fn no_complete_data_is_an_error() {
    let mut sim = simulate(10, 3, 4);
    sim.y.iter_mut().for_each(|v| *v = f64::NAN);
    sim_data!(data, sim);
    let spec = MmrmSpec::new(vec![], "AVISIT");
    assert!(matches!(
        fit_mmrm(&data, &spec),
        Err(StatsError::EmptyInput { .. })
    ));
}

/// Factor list with only a visit factor of `t` levels.
fn visit_factor(visit: &[usize], t: usize) -> [Factor<'_>; 1] {
    [Factor {
        name: "AVISIT",
        levels: &VIS[..t],
        codes: visit,
    }]
}

#[test]
fn single_subject() {
    let y = [1.0, 2.5, 2.0, 4.0];
    let subject = [7, 7, 7, 7];
    let visit = [0, 1, 2, 3];
    let factors = visit_factor(&visit, 4);
    let data = MmrmData {
        response: &y,
        subject: &subject,
        factors: &factors,
        covariates: &[],
    };
    // UN has 10 parameters and 3 residual degrees of freedom.
    let spec = MmrmSpec::new(vec![], "AVISIT");
    assert!(matches!(
        fit_mmrm(&data, &spec),
        Err(StatsError::TooFewObservations {
            n: 3,
            required: 10,
            ..
        })
    ));
    // With a visit effect there is nothing left at all.
    let spec = MmrmSpec::new(vec![Term::factor("AVISIT")], "AVISIT")
        .with_covariance(CovStructure::CompoundSymmetry);
    assert!(matches!(
        fit_mmrm(&data, &spec),
        Err(StatsError::TooFewObservations { .. })
    ));
    // CS on a single subject: a result or a clean error, never a panic or NaN.
    let spec = MmrmSpec::new(vec![], "AVISIT").with_covariance(CovStructure::CompoundSymmetry);
    match fit_mmrm(&data, &spec) {
        Ok(fit) => {
            assert!(fit.m2_log_lik.is_finite());
            assert!(
                fit.fixed_effects
                    .iter()
                    .all(|f| f.se.is_finite() && f.df > 0.0)
            );
        }
        Err(e) => assert!(matches!(e, StatsError::NotConverged { .. }), "{e}"),
    }
}

#[test]
fn invalid_specifications_are_errors() {
    let sim = simulate(20, 3, 6);
    sim_data!(data, sim);
    let invalid =
        |r: Result<MmrmFit, StatsError>| matches!(r, Err(StatsError::InvalidInput { .. }));
    assert!(invalid(fit_mmrm(
        &data,
        &MmrmSpec::new(vec![Term::factor("RACE")], "AVISIT")
    )));
    assert!(invalid(fit_mmrm(
        &data,
        &MmrmSpec::new(vec![Term::factor("AVISIT")], "AVISIT").with_arm("ARMCD")
    )));
    assert!(invalid(fit_mmrm(
        &data,
        &MmrmSpec::new(vec![Term::covariate("ARMCD")], "AVISIT")
    )));
    assert!(invalid(fit_mmrm(
        &data,
        &MmrmSpec::new(vec![], "AVISIT")
            .with_estimation(Estimation::Ml)
            .with_ddf(DdfMethod::KenwardRoger)
    )));
    let mut level = MmrmSpec::new(vec![], "AVISIT");
    level.conf_level = 1.0;
    assert_eq!(
        fit_mmrm(&data, &level).unwrap_err(),
        StatsError::InvalidConfLevel(1.0)
    );
    // Duplicate subject-visit rows.
    let y = [1.0, 2.0, 3.0];
    let subject = [1, 1, 2];
    let visit = [0, 0, 1];
    let factors = visit_factor(&visit, 2);
    let dup = MmrmData {
        response: &y,
        subject: &subject,
        factors: &factors,
        covariates: &[],
    };
    assert!(invalid(fit_mmrm(&dup, &MmrmSpec::new(vec![], "AVISIT"))));
    // Lengths that differ.
    let short = MmrmData {
        response: &y[..2],
        ..dup
    };
    assert!(invalid(fit_mmrm(&short, &MmrmSpec::new(vec![], "AVISIT"))));
    // A code without a level.
    let bad_code = [0, 5, 1];
    let factors = visit_factor(&bad_code, 2);
    let bad = MmrmData {
        factors: &factors,
        ..dup
    };
    assert!(invalid(fit_mmrm(&bad, &MmrmSpec::new(vec![], "AVISIT"))));
    // An infinite response.
    let y_inf = [1.0, f64::INFINITY, 3.0];
    let single_visit = [0, 0, 0];
    let factors = visit_factor(&single_visit, 1);
    let inf = MmrmData {
        response: &y_inf,
        subject: &[1, 2, 3],
        factors: &factors,
        covariates: &[],
    };
    assert!(matches!(
        fit_mmrm(&inf, &MmrmSpec::new(vec![], "AVISIT")),
        Err(StatsError::NonFiniteInput { index: 1, .. })
    ));
}

#[test]
fn non_convergence_is_an_error_or_reported() {
    let sim = simulate(60, 4, 8);
    sim_data!(data, sim);
    let mut spec = MmrmSpec::new(sim_terms(), "AVISIT");
    spec.control.max_iterations = 0;
    assert!(matches!(
        fit_mmrm(&data, &spec),
        Err(StatsError::NotConverged {
            what: "MMRM (UN covariance)",
            ..
        })
    ));
    spec.control.convergence = ConvergencePolicy::Report;
    let fit = fit_mmrm(&data, &spec).unwrap();
    assert!(!fit.convergence.converged);
    assert!(fit.convergence.message.contains("iteration limit"));
}

#[test]
fn fallback_chain_moves_past_structures_that_cannot_be_fitted() {
    // Two subjects, four visits, intercept only: UN's 10 parameters exceed
    // the 7 residual degrees of freedom; CS (2 parameters) can be fitted.
    let y = [1.0, 2.5, 2.0, 4.0, 1.5, 2.0, 3.5, 3.0];
    let subject = [1, 1, 1, 1, 2, 2, 2, 2];
    let visit = [0, 1, 2, 3, 0, 1, 2, 3];
    let factors = visit_factor(&visit, 4);
    let data = MmrmData {
        response: &y,
        subject: &subject,
        factors: &factors,
        covariates: &[],
    };
    let spec = MmrmSpec::new(vec![], "AVISIT");
    let chain = [CovStructure::Unstructured, CovStructure::CompoundSymmetry];
    let fb = fit_mmrm_with_fallback(&data, &spec, &chain).unwrap();
    assert_eq!(fb.structure, CovStructure::CompoundSymmetry);
    assert_eq!(fb.fit.structure, CovStructure::CompoundSymmetry);
    assert_eq!(fb.failures.len(), 1);
    assert_eq!(fb.failures[0].structure, CovStructure::Unstructured);
    assert!(matches!(
        fb.failures[0].error,
        StatsError::TooFewObservations { .. }
    ));
    // Data errors are not retried.
    let bad = MmrmSpec::new(vec![Term::factor("NOPE")], "AVISIT");
    assert!(matches!(
        fit_mmrm_with_fallback(&data, &bad, &DEFAULT_FALLBACK_CHAIN),
        Err(StatsError::InvalidInput { .. })
    ));
    // Nothing converges: NotConverged naming every structure.
    let mut stop = MmrmSpec::new(vec![], "AVISIT");
    stop.control.max_iterations = 0;
    let sim = simulate(40, 4, 12);
    sim_data!(data, sim);
    match fit_mmrm_with_fallback(&data, &stop, &DEFAULT_FALLBACK_CHAIN) {
        Err(StatsError::NotConverged { detail, .. }) => {
            for st in DEFAULT_FALLBACK_CHAIN {
                assert!(detail.contains(&format!("{}:", st.sas_name())), "{detail}");
            }
        }
        other => panic!("expected NotConverged, got {other:?}"),
    }
}

#[test]
fn default_chain_uses_unstructured_when_it_converges() {
    let sim = simulate(100, 3, 13);
    sim_data!(data, sim);
    let spec = MmrmSpec::new(sim_terms(), "AVISIT");
    let fb = fit_mmrm_with_fallback(&data, &spec, &DEFAULT_FALLBACK_CHAIN).unwrap();
    assert_eq!(fb.structure, CovStructure::Unstructured);
    assert!(fb.failures.is_empty());
}

#[test]
fn single_visit_is_the_pooled_t_test() {
    // One visit: the MMRM is a linear model, REML gives σ² = RSS/(n - p), and
    // the Satterthwaite df are exactly n - p, so TRT - PBO is the pooled t-test.
    let sim = simulate(41, 1, 21);
    sim_data!(data, sim);
    let spec = MmrmSpec::new(vec![Term::factor("ARMCD")], "AVISIT").with_arm("ARMCD");
    for st in CovStructure::ALL {
        let fit = fit_mmrm(&data, &spec.clone().with_covariance(st)).unwrap();
        assert_eq!(fit.n_cov_parameters, 1);
        let (x, y): (Vec<f64>, Vec<f64>) = (
            (0..sim.y.len())
                .filter(|&i| sim.arm[i] == 1 && !sim.y[i].is_nan())
                .map(|i| sim.y[i])
                .collect(),
            (0..sim.y.len())
                .filter(|&i| sim.arm[i] == 0 && !sim.y[i].is_nan())
                .map(|i| sim.y[i])
                .collect(),
        );
        let t = super::super::ttest::t_test_two_sample(
            &x,
            &y,
            super::super::ttest::VarianceAssumption::Pooled,
            super::super::common::Alternative::TwoSided,
            0.95,
        )
        .unwrap();
        let d = &fit.arm_differences[0].result;
        assert!((d.estimate - t.estimate).abs() < 1e-10);
        assert!((d.se - t.se.unwrap()).abs() < 1e-8 * d.se, "{st:?}");
        assert!((d.df - t.df.unwrap()).abs() < 1e-6, "{st:?} df {}", d.df);
        assert!((d.p_value - t.p_value).abs() < 1e-8);
        let ci = t.ci.unwrap();
        assert!((d.ci.lower - ci.lower).abs() < 1e-7 && (d.ci.upper - ci.upper).abs() < 1e-7);
    }
}
