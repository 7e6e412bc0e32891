//! One vector filled in place by producers running in parallel, each in its own region, the
//! results in the producers' order.
//!
//! Ingest reads its lab files in parallel. Each file used to fill a vector of its own, and the
//! vectors were then joined behind the first one: for the benchmark's 2 million records, about
//! 0.9 million records of 208 bytes moved on one core while the other waited, most of that
//! time going to the page faults of the memory they moved into (`docs/benchmarks.md`).
//! Here every producer writes straight into its own region of one vector sized by an upper
//! bound of what each produces (for a text file, its lines), so each record is written once,
//! where it stays, and each page is first touched by the thread that reads the file. The
//! regions are then closed up; with exact bounds nothing moves.
//!
//! A producer that gives more than its bound still works: the excess is kept aside and put in
//! its place when the regions are joined (slower, never wrong).

use std::mem::MaybeUninit;

/// Where one producer puts its items: its region of the shared vector, then a spill vector
/// once the region is full.
pub struct Sink<'s, T> {
    slots: &'s mut [MaybeUninit<T>],
    filled: usize,
    spill: Vec<T>,
}

impl<T> Sink<'_, T> {
    /// Add an item after the ones before it.
    pub fn push(&mut self, item: T) {
        match self.slots.get_mut(self.filled) {
            Some(slot) => {
                slot.write(item);
                self.filled += 1;
            }
            None => self.spill.push(item),
        }
    }

    /// Items pushed so far.
    pub fn len(&self) -> usize {
        self.filled + self.spill.len()
    }

    /// Whether nothing has been pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Run `produce` on every job in parallel, each job `(input, bound)` writing at most about
/// `bound` items into its [`Sink`]; returns every job's items in one vector, in the jobs'
/// order, and every job's result, in the same order.
///
/// If `produce` panics, the panic propagates and the items already written are leaked (never
/// dropped), which is safe.
pub fn fill_in_order<T, I, R, F>(jobs: Vec<(I, usize)>, produce: F) -> (Vec<T>, Vec<R>)
where
    T: Send,
    I: Send,
    R: Send,
    F: Fn(I, &mut Sink<'_, T>) -> R + Sync,
{
    use rayon::prelude::*;
    let total: usize = jobs.iter().map(|(_, b)| *b).sum();
    let mut items: Vec<T> = Vec::with_capacity(total);
    let mut regions = Vec::with_capacity(jobs.len());
    let mut rest = &mut items.spare_capacity_mut()[..total];
    for (_, bound) in &jobs {
        let (region, tail) = rest.split_at_mut(*bound);
        regions.push(region);
        rest = tail;
    }
    let done: Vec<(usize, usize, Vec<T>, R)> = jobs
        .into_par_iter()
        .zip(regions)
        .map(|((input, bound), slots)| {
            let mut sink = Sink {
                slots,
                filled: 0,
                spill: Vec::new(),
            };
            let r = produce(input, &mut sink);
            (bound, sink.filled, sink.spill, r)
        })
        .collect();
    // Close up the regions: each region's items move down to follow the ones before.
    let base = items.as_mut_ptr();
    let (mut start, mut end) = (0, 0);
    for (bound, filled, _, _) in &done {
        if start != end {
            // SAFETY: the region's first `filled` slots (at `start`, inside the capacity) were
            // written by its sink, in order; `end <= start`, so the destination is inside the
            // capacity too, and the slots it overwrites hold items already moved or none.
            // `ptr::copy` allows the overlap.
            unsafe { std::ptr::copy(base.add(start), base.add(end), *filled) };
        }
        start += bound;
        end += filled;
    }
    // SAFETY: the first `end` slots now hold the regions' items, each exactly once, in order.
    unsafe { items.set_len(end) };
    let mut results = Vec::with_capacity(done.len());
    if done.iter().all(|(_, _, spill, _)| spill.is_empty()) {
        results.extend(done.into_iter().map(|(_, _, _, r)| r));
        return (items, results);
    }
    // A producer gave more than its bound: its excess goes right after its region's items.
    let extra: usize = done.iter().map(|(_, _, s, _)| s.len()).sum();
    let mut joined = Vec::with_capacity(items.len() + extra);
    let mut from = items.into_iter();
    for (_, filled, spill, r) in done {
        joined.extend(from.by_ref().take(filled));
        joined.extend(spill);
        results.push(r);
    }
    (joined, results)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs that each push `n` strings "job/item", with the given bounds.
    fn run(jobs: &[(usize, usize)]) -> (Vec<String>, Vec<usize>) {
        let jobs: Vec<((usize, usize), usize)> = jobs
            .iter()
            .enumerate()
            .map(|(j, &(n, bound))| ((j, n), bound))
            .collect();
        fill_in_order(jobs, |(j, n), sink| {
            for i in 0..n {
                sink.push(format!("{j}/{i}"));
            }
            sink.len()
        })
    }

    /// Run jobs of `(items, bound)`, check that every item comes once, in order, and that each
    /// job's result is its count; the items.
    fn check(jobs: &[(usize, usize)]) -> Vec<String> {
        let (items, lens) = run(jobs);
        let counts: Vec<usize> = jobs.iter().map(|&(n, _)| n).collect();
        let expected: Vec<String> = counts
            .iter()
            .enumerate()
            .flat_map(|(j, &n)| (0..n).map(move |i| format!("{j}/{i}")))
            .collect();
        assert_eq!(items, expected);
        assert_eq!(lens, counts);
        items
    }

    #[test]
    fn exact_bounds_give_every_item_in_order() {
        check(&[(3, 3), (0, 0), (5, 5), (2, 2)]);
    }

    #[test]
    fn loose_bounds_are_closed_up() {
        let items = check(&[(3, 7), (0, 4), (5, 6), (2, 9)]);
        assert_eq!(items.capacity(), 26);
    }

    #[test]
    fn items_beyond_a_bound_are_put_in_their_place() {
        check(&[(3, 1), (4, 6), (5, 0), (2, 2)]);
    }

    #[test]
    fn no_jobs_give_nothing() {
        assert!(check(&[]).is_empty());
    }
}
