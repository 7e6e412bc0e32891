//! Visit windows: which analysis window a study day falls in, and which record a window keeps
//! when several fall in it.
//!
//! Pure functions shared by `validate` (out-of-window and several-per-window findings) and
//! `derive` (AVISIT, ANL01FL). Windows are closed intervals of study days; `spec::check`
//! guarantees they do not overlap, so a day falls in at most one window.

use crate::spec::{TieRule, Window, WindowRule};

/// Index of the window holding `day`, if any.
pub fn window_of(day: i64, windows: &[Window]) -> Option<usize> {
    windows
        .iter()
        .position(|w| day >= i64::from(w.low) && day <= i64::from(w.high))
}

/// A candidate record in one window: its study day and a stable tie-breaker (e.g. row order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Study day.
    pub day: i64,
    /// Position used to make the choice deterministic when days are equal (lower wins).
    pub order: usize,
}

/// Pick the record a window keeps. Returns the index into `candidates`, or None when empty.
///
/// * `Closest`: smallest |day − target|; on equal distance the earlier day (`TieRule::Earlier`,
///   the default) or the later day; on the same day the lower `order`.
/// * `Earliest` / `Latest`: the first / last day; on the same day the lower `order`.
pub fn select(
    candidates: &[Candidate],
    window: &Window,
    rule: WindowRule,
    tie: TieRule,
) -> Option<usize> {
    let target = i64::from(window.target);
    candidates
        .iter()
        .enumerate()
        .min_by_key(|(_, c)| {
            let primary = match rule {
                WindowRule::Closest => (c.day - target).abs(),
                WindowRule::Earliest => c.day,
                WindowRule::Latest => -c.day,
            };
            let secondary = match (rule, tie) {
                (WindowRule::Closest, TieRule::Earlier) => c.day,
                (WindowRule::Closest, TieRule::Later) => -c.day,
                _ => 0,
            };
            (primary, secondary, c.order)
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> Window {
        Window {
            name: "WEEK 12".into(),
            number: 12.0,
            target: 85,
            low: 57,
            high: 113,
        }
    }

    fn c(day: i64, order: usize) -> Candidate {
        Candidate { day, order }
    }

    #[test]
    fn window_lookup() {
        let ws = vec![
            Window {
                name: "BASELINE".into(),
                number: 0.0,
                target: 1,
                low: -28,
                high: 1,
            },
            w(),
        ];
        assert_eq!(window_of(-28, &ws), Some(0));
        assert_eq!(window_of(1, &ws), Some(0));
        assert_eq!(window_of(2, &ws), None);
        assert_eq!(window_of(113, &ws), Some(1));
        assert_eq!(window_of(114, &ws), None);
    }

    #[test]
    fn closest_then_earlier() {
        let cs = [c(90, 0), c(80, 1), c(100, 2)];
        assert_eq!(
            select(&cs, &w(), WindowRule::Closest, TieRule::Earlier),
            Some(1)
        );
        assert_eq!(
            select(&cs, &w(), WindowRule::Closest, TieRule::Later),
            Some(0)
        );
        assert_eq!(
            select(&cs, &w(), WindowRule::Earliest, TieRule::Earlier),
            Some(1)
        );
        assert_eq!(
            select(&cs, &w(), WindowRule::Latest, TieRule::Earlier),
            Some(2)
        );
        let same_day = [c(84, 3), c(84, 1)];
        assert_eq!(
            select(&same_day, &w(), WindowRule::Closest, TieRule::Earlier),
            Some(1)
        );
        assert_eq!(
            select(&[], &w(), WindowRule::Closest, TieRule::Earlier),
            None
        );
    }
}
