//! Clustering unit tests.
#![allow(clippy::unwrap_used)]

use super::*;
use rand::{Rng, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn blob(rng: &mut ChaCha8Rng, n: usize, mean: &[f64], sd: f64) -> Vec<Vec<f64>> {
    (0..n)
        .map(|_| {
            mean.iter()
                .map(|m| m + sd * rng.sample::<f64, _>(StandardNormal))
                .collect()
        })
        .collect()
}

fn cfg() -> FitConfig {
    FitConfig::default()
}

fn assert_prob(p: &[f64]) {
    assert!(p.iter().all(|v| v.is_finite() && *v >= 0.0), "{p:?}");
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{p:?}");
}

#[test]
fn scaler_median_mad_exact_and_floors() {
    // Feature 0: 1,2,3,4,100 -> median 3, |dev| 2,1,0,1,97 -> MAD 1 -> scale 1.4826.
    // Feature 1: 10,10,10,10,12 -> median 10, MAD 0 -> floor 0.5.
    // Feature 2: 1,2,3,4,5 (even count check below) -> median 3, MAD 1; floor 2 wins.
    let x = vec![
        vec![1.0, 10.0, 1.0],
        vec![2.0, 10.0, 2.0],
        vec![3.0, 10.0, 3.0],
        vec![4.0, 10.0, 4.0],
        vec![100.0, 12.0, 5.0],
    ];
    let s = Scaler::fit(&x, &[0.1, 0.5, 2.0]).unwrap();
    assert_eq!(s.center, vec![3.0, 10.0, 3.0]);
    assert_eq!(s.scale, vec![1.4826, 0.5, 2.0]);
    let z = s.transform(&[4.4826, 11.0, 7.0]);
    assert!((z[0] - 1.0).abs() < 1e-12 && z[1] == 2.0 && z[2] == 2.0);
    let back = s.inverse(&z);
    assert!((back[0] - 4.4826).abs() < 1e-12 && back[1] == 11.0 && back[2] == 7.0);

    // Even count: 1,2,4,7 -> median 3; |dev| 2,1,1,4 -> MAD 1.5.
    let x = vec![vec![1.0], vec![2.0], vec![4.0], vec![7.0]];
    let s = Scaler::fit(&x, &[0.0]).unwrap();
    assert_eq!(s.center, vec![3.0]);
    assert!((s.scale[0] - 1.5 * 1.4826).abs() < 1e-12);

    // Zero spread and zero floor is refused.
    let x = vec![vec![1.0]; 4];
    assert!(matches!(
        Scaler::fit(&x, &[0.0]),
        Err(ClusterError::Degenerate(_))
    ));
    assert_eq!(
        Scaler::fit(&x, &[-1.0]),
        Err(ClusterError::BadFloor {
            index: 0,
            value: -1.0
        })
    );
    assert_eq!(
        Scaler::fit(&x, &[1.0, 1.0]),
        Err(ClusterError::DimensionMismatch)
    );
}

#[test]
fn one_blob_chooses_single() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let raw_mean = [70.0, 40.0, 5.0, 2.0];
    let x = blob(&mut rng, 60, &raw_mean, 1.0);
    let dirs = [1.0, -1.0, 1.0, 1.0];
    let m = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
    assert_eq!(m.components.len(), 1, "criterion {:?}", m.criterion);
    assert_eq!(m.method, "single");
    // k = 2 tried (60 >= 2 x 29), k = 3 skipped (needs 88).
    let ks: Vec<usize> = m.criterion.iter().map(|c| c.0).collect();
    assert_eq!(ks, vec![1, 2], "{:?} {:?}", m.criterion, m.notes);
    assert!(m.criterion[0].1 < m.criterion[1].1);
    assert!(m.notes.iter().any(|n| n.starts_with("k=3: skipped")));
    // Calm mean (back in raw units) equals the sample mean.
    let raw = m.scaler.inverse(&m.calm().mean);
    for j in 0..4 {
        let sm = x.iter().map(|r| r[j]).sum::<f64>() / 60.0;
        assert!((raw[j] - sm).abs() < 1e-9, "{j}: {} vs {sm}", raw[j]);
    }
    assert_eq!(m.calm().weight, 1.0);
    assert_eq!(m.posteriors(&raw_mean), vec![1.0]);
    // The sample covariance in standardised units + reg on the diagonal.
    let z: Vec<Vec<f64>> = x.iter().map(|r| m.scaler.transform(r)).collect();
    let zm = &m.calm().mean;
    let c01 = z
        .iter()
        .map(|r| (r[0] - zm[0]) * (r[1] - zm[1]))
        .sum::<f64>()
        / 60.0;
    assert!((m.calm().cov[0][1] - c01).abs() < 1e-12);
    let c00 = z.iter().map(|r| (r[0] - zm[0]).powi(2)).sum::<f64>() / 60.0 + 1e-3;
    assert!((m.calm().cov[0][0] - c00).abs() < 1e-12);
    assert!(m.log_likelihood.is_finite());
}

fn two_blobs(seed: u64) -> (Vec<Vec<f64>>, [f64; 4]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dirs = [1.0, -1.0, 1.0, -1.0];
    let calm = [0.0; 4];
    let aroused: Vec<f64> = dirs.iter().map(|d| 4.0 * d).collect();
    let mut x = blob(&mut rng, 40, &aroused, 1.0);
    x.extend(blob(&mut rng, 40, &calm, 1.0));
    (x, dirs)
}

#[test]
fn two_blobs_choose_two_calm_first() {
    let (x, dirs) = two_blobs(11);
    let m = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
    assert_eq!(m.components.len(), 2, "{:?} {:?}", m.criterion, m.notes);
    assert_eq!(m.method, "gmm", "{:?}", m.notes);
    assert!(m.criterion[1].1 < m.criterion[0].1);
    let (c0, c1) = (&m.components[0], &m.components[1]);
    assert!(c0.arousal < c1.arousal);
    assert!((c0.weight - 0.5).abs() < 0.05 && (c1.weight - 0.5).abs() < 0.05);
    // The calm component's raw mean is near 0 (not +-4 on any feature).
    let raw0 = m.scaler.inverse(&c0.mean);
    let raw1 = m.scaler.inverse(&c1.mean);
    for j in 0..4 {
        assert!(raw0[j].abs() < 0.6, "calm raw mean {raw0:?}");
        assert!((raw1[j] - 4.0 * dirs[j]).abs() < 0.6, "aroused {raw1:?}");
    }
    // Points from each blob are assigned to the right cluster.
    let p_calm = m.posteriors(&[0.0; 4]);
    let p_ar = m.posteriors(&[4.0, -4.0, 4.0, -4.0]);
    assert_prob(&p_calm);
    assert!(p_calm[0] > 0.999 && p_ar[1] > 0.999);
    assert!(m.mahalanobis(0, &[0.0; 4]) < m.mahalanobis(1, &[0.0; 4]));
    // weights sum to 1
    assert!((c0.weight + c1.weight - 1.0).abs() < 1e-9);
}

#[test]
fn far_point_is_finite() {
    let (x, dirs) = two_blobs(3);
    let m = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
    assert_eq!(m.components.len(), 2);
    let s = &m.scaler;
    // 1e6 robust sigma away, and absurdly far, in several directions.
    let cases = [
        s.inverse(&[1e6, 1e6, 1e6, 1e6]),
        s.inverse(&[-1e6, 0.0, 3.0, 1e6]),
        vec![1e300, -1e300, 1e300, f64::MAX],
        vec![f64::MIN, 0.0, 0.0, 0.0],
    ];
    for v in &cases {
        let ld = m.log_densities(v);
        assert!(ld.iter().all(|l| l.is_finite()), "{v:?} -> {ld:?}");
        assert_prob(&m.posteriors(v));
        for k in 0..2 {
            let d = m.mahalanobis(k, v);
            assert!(d.is_finite() && d > 1e5, "{d}");
        }
    }
    // Far away the posterior is one-hot on the component with the smaller Mahalanobis
    // distance (the limit of the exact responsibilities), whatever the covariance shapes.
    for v in &cases {
        let p = m.posteriors(v);
        let near = usize::from(m.mahalanobis(1, v) < m.mahalanobis(0, v));
        assert!(p[near] > 0.999, "{v:?} -> {p:?}");
    }
    // Invalid input: no panic, no NaN.
    assert_prob(&m.posteriors(&[f64::NAN, 0.0, 0.0, 0.0]));
    assert_prob(&m.posteriors(&[0.0]));
    assert!(
        m.log_densities(&[0.0])
            .iter()
            .all(|l| *l == f64::NEG_INFINITY)
    );
    assert_eq!(
        m.try_log_densities(&[f64::INFINITY, 0.0, 0.0, 0.0]),
        Err(ClusterError::NonFinite)
    );
    assert_eq!(m.mahalanobis(5, &[0.0; 4]), f64::INFINITY);
}

#[test]
fn log_density_matches_closed_form() {
    // 1-D single Gaussian: check against the textbook formula.
    let x: Vec<Vec<f64>> = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .map(|v| vec![*v])
        .collect();
    let m = fit(&x, &[1.0], &[0.0], &cfg()).unwrap();
    let c = m.calm();
    let var = c.cov[0][0];
    let z = m.scaler.transform(&[5.0])[0];
    let want = -0.5 * ((z - c.mean[0]).powi(2) / var + (2.0 * std::f64::consts::PI * var).ln());
    assert!((m.log_densities(&[5.0])[0] - want).abs() < 1e-12);
    assert!((m.mahalanobis(0, &[5.0]) - (z - c.mean[0]).abs() / var.sqrt()).abs() < 1e-12);
}

#[test]
fn degenerate_inputs() {
    // All vectors identical: floors give a valid single model.
    // N = 40: k = 2 passes the points-per-parameter rule (38) but not the distinct rule.
    let x = vec![vec![60.0, 50.0, 3.0]; 40];
    let m = fit(&x, &[1.0, -1.0, 1.0], &[1.5, 2.0, 0.05], &cfg()).unwrap();
    assert_eq!(m.components.len(), 1);
    assert_eq!(m.method, "single");
    assert!(
        m.notes.iter().any(|n| n.contains("distinct")),
        "{:?}",
        m.notes
    );
    assert_eq!(m.calm().mean, vec![0.0; 3]);
    assert!(m.log_densities(&[61.0, 50.0, 3.0])[0].is_finite());
    assert_prob(&m.posteriors(&[61.0, 50.0, 3.0]));
    // ... but without floors it is a clean error.
    assert!(matches!(
        fit(&x, &[1.0, -1.0, 1.0], &[0.0; 3], &cfg()),
        Err(ClusterError::Degenerate(_))
    ));

    // One constant feature among varying ones (two blobs in the others).
    let (mut x, dirs) = two_blobs(5);
    for r in x.iter_mut() {
        r[2] = 7.0;
    }
    let m = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
    assert!(!m.components.is_empty());
    for c in &m.components {
        assert!(c.weight.is_finite() && c.mean.iter().all(|v| v.is_finite()));
        assert!(c.cov.iter().flatten().all(|v| v.is_finite()));
    }
    assert!(m.criterion.iter().all(|(_, b)| b.is_finite()));
    assert_prob(&m.posteriors(&[0.0, 0.0, 7.0, 0.0]));
    assert_prob(&m.posteriors(&[0.0, 0.0, 8.0, 0.0]));

    // Two distinct points only, repeated: k = 2 may be attempted; no panic, no NaN.
    let mut x = vec![vec![0.0, 0.0]; 20];
    x.extend(vec![vec![1.0, 1.0]; 20]);
    let m = fit(&x, &[1.0, 1.0], &[0.1, 0.1], &cfg()).unwrap();
    assert!(m.components.iter().all(|c| c.weight.is_finite()));
    assert_prob(&m.posteriors(&[0.5, 0.5]));
}

#[test]
fn too_few_and_k_limits() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let dirs = [1.0, -1.0, 1.0, 1.0];
    let x = blob(&mut rng, 4, &[0.0; 4], 1.0);
    assert_eq!(
        fit(&x, &dirs, &[0.1; 4], &cfg()),
        Err(ClusterError::TooFew { n: 4, need: 5 })
    );
    assert_eq!(
        fit(&[], &dirs, &[0.1; 4], &cfg()),
        Err(ClusterError::TooFew { n: 0, need: 5 })
    );
    // D = 8 needs D + 1 = 9.
    let x8 = blob(&mut rng, 8, &[0.0; 8], 1.0);
    assert_eq!(
        fit(&x8, &[1.0; 8], &[0.1; 8], &cfg()),
        Err(ClusterError::TooFew { n: 8, need: 9 })
    );
    // N = 20, D = 4: only k = 1 is eligible (k = 2 needs 58).
    let x = blob(&mut rng, 20, &[0.0; 4], 1.0);
    let m = fit(&x, &dirs, &[0.1; 4], &cfg()).unwrap();
    assert_eq!(m.criterion.len(), 1);
    assert_eq!(m.notes.len(), 2, "{:?}", m.notes);
    // max_k = 1 never tries more.
    let (x, dirs) = two_blobs(2);
    let c1 = FitConfig { max_k: 1, ..cfg() };
    let m = fit(&x, &dirs, &[0.01; 4], &c1).unwrap();
    assert_eq!((m.components.len(), m.criterion.len()), (1, 1));
    assert!(params(2, 4) == 29 && params(3, 4) == 44 && params(1, 1) == 2);
}

#[test]
fn invalid_inputs() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut x = blob(&mut rng, 10, &[0.0; 3], 1.0);
    let d3 = [1.0, -1.0, 1.0];
    let f3 = [0.1; 3];
    x[3][1] = f64::NAN;
    assert_eq!(fit(&x, &d3, &f3, &cfg()), Err(ClusterError::NonFinite));
    x[3][1] = f64::INFINITY;
    assert_eq!(fit(&x, &d3, &f3, &cfg()), Err(ClusterError::NonFinite));
    x[3][1] = 0.0;
    assert_eq!(
        fit(&x, &[1.0, -1.0], &f3, &cfg()),
        Err(ClusterError::DimensionMismatch)
    );
    assert_eq!(
        fit(&x, &d3, &[0.1; 4], &cfg()),
        Err(ClusterError::DimensionMismatch)
    );
    assert_eq!(
        fit(&x, &[1.0, 0.5, 1.0], &f3, &cfg()),
        Err(ClusterError::BadDirection {
            index: 1,
            value: 0.5
        })
    );
    assert_eq!(
        fit(&x, &d3, &[0.1, f64::NAN, 0.1], &cfg()),
        Err(ClusterError::NonFinite)
    );
    x[5].push(1.0);
    assert_eq!(
        fit(&x, &d3, &f3, &cfg()),
        Err(ClusterError::DimensionMismatch)
    );
    let x9 = vec![vec![0.0; 9]; 20];
    assert_eq!(
        fit(&x9, &[1.0; 9], &[0.1; 9], &cfg()),
        Err(ClusterError::BadFeatureCount { d: 9, max: 8 })
    );
    let x = blob(&mut rng, 10, &[0.0; 3], 1.0);
    for bad in [
        FitConfig { max_k: 0, ..cfg() },
        FitConfig { n_runs: 0, ..cfg() },
        FitConfig {
            reg_covariance: 0.0,
            ..cfg()
        },
        FitConfig {
            min_points_per_param: f64::NAN,
            ..cfg()
        },
    ] {
        assert!(matches!(
            fit(&x, &d3, &f3, &bad),
            Err(ClusterError::InvalidConfig(_))
        ));
    }
    // Messages are one line.
    let e = ClusterError::TooFew { n: 3, need: 5 }.to_string();
    assert!(!e.contains('\n') && e.contains('3') && e.contains('5'));
}

#[test]
fn deterministic_json() {
    let (x, dirs) = two_blobs(21);
    let a = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
    let b = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
    let ja = serde_json::to_string(&a).unwrap();
    let jb = serde_json::to_string(&b).unwrap();
    assert_eq!(ja, jb);
    // And it round-trips.
    let back: ClusterModel = serde_json::from_str(&ja).unwrap();
    assert_eq!(back, a);
}

#[test]
fn kmeans_fallback_is_valid() {
    let (x, _) = two_blobs(4);
    let s = Scaler::fit(&x, &[0.01; 4]).unwrap();
    let z: Vec<Vec<f64>> = x.iter().map(|r| s.transform(r)).collect();
    let comps = fit_kmeans(&z, 2, &cfg()).unwrap();
    assert_eq!(comps.len(), 2);
    assert!((comps[0].weight + comps[1].weight - 1.0).abs() < 1e-12);
    assert!((comps[0].weight - 0.5).abs() < 0.05);
    assert_eq!(comps[0].cov, comps[1].cov);
    let ll = mixture_ll(&z, &comps).unwrap();
    let single = fit_single(&z, 1e-3).unwrap();
    assert!(ll > mixture_ll(&z, &single).unwrap());
}

#[test]
fn merge_blends_calm() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let dirs = [1.0, -1.0];
    let a = fit(
        &blob(&mut rng, 40, &[60.0, 50.0], 2.0),
        &dirs,
        &[0.1; 2],
        &cfg(),
    )
    .unwrap();
    let b = fit(
        &blob(&mut rng, 40, &[64.0, 46.0], 2.0),
        &dirs,
        &[0.1; 2],
        &cfg(),
    )
    .unwrap();
    assert_eq!((a.components.len(), b.components.len()), (1, 1));
    let raw = |m: &ClusterModel| m.scaler.inverse(&m.calm().mean);
    let m = a.merge(&b, 0.5);
    let (ra, rb, rm) = (raw(&a), raw(&b), raw(&m));
    for j in 0..2 {
        assert!((rm[j] - 0.5 * (ra[j] + rb[j])).abs() < 1e-9);
    }
    // w = 0 keeps the old calm component (in raw units), w = 1 the new one.
    let m0 = a.merge(&b, 0.0);
    let m1 = a.merge(&b, 1.0);
    for j in 0..2 {
        assert!((raw(&m0)[j] - ra[j]).abs() < 1e-9);
        assert!((raw(&m1)[j] - rb[j]).abs() < 1e-9);
    }
    // The blended variance includes the spread between the means.
    let var_raw = |m: &ClusterModel| m.calm().cov[0][0] * m.scaler.scale[0].powi(2);
    let want = 0.5 * (var_raw(&a) + (ra[0] - rm[0]).powi(2))
        + 0.5 * (var_raw(&b) + (rb[0] - rm[0]).powi(2));
    assert!((var_raw(&m) - want).abs() < 1e-9);
    assert_prob(&m.posteriors(&[62.0, 48.0]));
    // Incompatible models: newer unchanged but for a note.
    let c = fit(&blob(&mut rng, 40, &[1.0], 1.0), &[1.0], &[0.1], &cfg()).unwrap();
    let mc = a.merge(&c, 0.5);
    assert_eq!(mc.components, c.components);
    assert_eq!(mc.notes.len(), c.notes.len() + 1);
    assert_prob(&a.merge(&b, f64::NAN).posteriors(&[62.0, 48.0]));
}

#[test]
fn bic_choice_stable_across_seeds() {
    // 10 independent data sets and seeds each: one blob -> k = 1, two blobs -> k = 2 (GMM).
    for seed in 100..110u64 {
        let c = FitConfig { seed, ..cfg() };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = blob(&mut rng, 60, &[0.0; 4], 1.0);
        let m = fit(&x, &[1.0, -1.0, 1.0, 1.0], &[0.01; 4], &c).unwrap();
        assert_eq!(m.components.len(), 1, "seed {seed}: {:?}", m.criterion);
        let (x, dirs) = two_blobs(seed);
        let m = fit(&x, &dirs, &[0.01; 4], &c).unwrap();
        assert_eq!(m.components.len(), 2, "seed {seed}: {:?}", m.criterion);
        assert_eq!(m.method, "gmm");
        assert!(m.calm().arousal < m.components[1].arousal);
    }
}

#[test]
fn single_outlier_does_not_get_its_own_component() {
    // EM (linfa) puts a component on one gross outlier; the size rule rejects that fit.
    for far in [1e2, 1e4] {
        let (mut x, dirs) = two_blobs(11);
        x.push(vec![far; 4]);
        let m = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
        for c in &m.components {
            assert!(
                c.weight * 81.0 >= 5.0,
                "{far}: {:?} {:?}",
                m.components,
                m.notes
            );
        }
        assert_prob(&m.posteriors(&[far; 4]));
        // Known limitation: the two real blobs are then not separated either (k-means++
        // also isolates the outlier), so k = 1 is chosen. Remove artefacts upstream.
        assert!(
            m.notes.iter().any(|n| n.contains("effective points")),
            "{:?}",
            m.notes
        );
    }
}
