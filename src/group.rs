//! Grouping rows by a key without a heap allocation per group.
//!
//! Validate and derive group millions of lab rows by keys such as (subject, test, date) or
//! (subject, parameter, window). A map from key to `Vec<usize>` costs one allocation per group,
//! and most groups hold a single row. [`Groups`] keeps one flat array of row indices ordered by
//! group and one array of group boundaries instead, built in two passes over a hash map from key
//! to group number.
//!
//! [`Split`] divides the few rows of one such group further by a finer key (validate groups by
//! subject and test once, then splits each group by visit and result, by date and by window).
//!
//! Order is deterministic and independent of the hasher: groups come in the order of their first
//! row, and rows within a group in input order.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// Row indices grouped by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    /// Row indices, group after group.
    rows: Vec<u32>,
    /// `rows[bounds[g]..bounds[g + 1]]` is group `g`.
    bounds: Vec<u32>,
}

impl Groups {
    /// Group the rows `0..n` by `key`; rows whose key is None belong to no group.
    ///
    /// Panics when `n` exceeds `u32::MAX` rows (four billion lab results).
    pub fn by<K: Hash + Eq>(n: usize, mut key: impl FnMut(usize) -> Option<K>) -> Groups {
        use std::hash::BuildHasher;
        assert!(u32::try_from(n).is_ok(), "more than u32::MAX rows");
        let hasher = rustc_hash::FxBuildHasher;
        // The table holds group numbers only; a group's key is rebuilt from its first row to
        // compare, and its hash is kept beside it for growing the table.
        let mut ids: hashbrown::HashTable<u32> = hashbrown::HashTable::new();
        ids.reserve(n.min(1 << 20), |_| 0);
        let mut first: Vec<u32> = Vec::new();
        let mut hashes: Vec<u64> = Vec::new();
        let mut group_of: Vec<u32> = Vec::with_capacity(n);
        let mut sizes: Vec<u32> = Vec::new();
        // The key of the row before and its group: rows sorted or grouped by the key (derive's
        // ADLB rows come by subject and test) find their group without hashing.
        let mut last: Option<(K, u32)> = None;
        for i in 0..n {
            let Some(k) = key(i) else {
                group_of.push(u32::MAX);
                continue;
            };
            let g = match &last {
                Some((lk, g)) if *lk == k => *g,
                _ => {
                    let h = hasher.hash_one(&k);
                    let found = ids
                        .find(h, |&g| {
                            hashes[g as usize] == h
                                && key(first[g as usize] as usize).as_ref() == Some(&k)
                        })
                        .copied();
                    let g = match found {
                        Some(g) => g,
                        None => {
                            let g = sizes.len() as u32;
                            ids.insert_unique(h, g, |&x| hashes[x as usize]);
                            first.push(i as u32);
                            hashes.push(h);
                            sizes.push(0);
                            g
                        }
                    };
                    last = Some((k, g));
                    g
                }
            };
            sizes[g as usize] += 1;
            group_of.push(g);
        }
        drop((ids, first, hashes));
        let mut bounds = Vec::with_capacity(sizes.len() + 1);
        let mut total = 0u32;
        bounds.push(0);
        for s in &sizes {
            total += s;
            bounds.push(total);
        }
        // Fill each group from its start; `sizes` becomes the fill cursor.
        let mut cursor: Vec<u32> = bounds[..bounds.len() - 1].to_vec();
        drop(sizes);
        let mut rows = vec![0u32; total as usize];
        for (i, &g) in group_of.iter().enumerate() {
            if g != u32::MAX {
                let c = &mut cursor[g as usize];
                rows[*c as usize] = i as u32;
                *c += 1;
            }
        }
        Groups { rows, bounds }
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    /// Whether there is no group.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows of group `g`, in input order.
    pub fn get(&self, g: usize) -> &[u32] {
        &self.rows[self.bounds[g] as usize..self.bounds[g + 1] as usize]
    }

    /// Every group, in the order of its first row.
    pub fn iter(&self) -> impl Iterator<Item = &[u32]> + '_ {
        (0..self.len()).map(|g| self.get(g))
    }
}

/// Lookups in a hash map that remember the last key and its value: records come grouped by
/// subject (an export lists a subject's records together, and derive sorts by subject), so most
/// lookups by subject repeat the one before and skip the probe into a table of every subject,
/// which a large trial's cache does not hold.
pub struct LastKey<'m, K, V> {
    map: &'m FxHashMap<K, V>,
    last: Option<(K, &'m V)>,
}

impl<'m, K: Hash + Eq + Copy, V> LastKey<'m, K, V> {
    /// Lookups in `map`.
    pub fn new(map: &'m FxHashMap<K, V>) -> Self {
        LastKey { map, last: None }
    }

    /// The value of `key`, as `map.get(&key)`.
    pub fn get(&mut self, key: K) -> Option<&'m V> {
        if let Some((k, v)) = self.last
            && k == key
        {
            return Some(v);
        }
        let v = self.map.get(&key)?;
        self.last = Some((key, v));
        Some(v)
    }
}

/// Up to this many rows, a group is split by comparing each row with the rows before it
/// ([`Split`]); a larger one is grouped by hashing. Other pairwise checks of one group's rows
/// use the same bound.
pub const SPLIT_PAIRWISE: usize = 48;

/// Splits the rows of one group into smaller groups by a finer key, with the order of
/// [`Groups`]: groups in the order of their first row, rows in input order, rows whose key is
/// None in none. Meant for the few rows of one group (one subject's results for one test), where
/// comparing each row with the rows before it costs less than hashing; a large group is
/// grouped by [`Groups::by`]. The buffers are kept from call to call.
#[derive(Debug)]
pub struct Split<K> {
    keys: Vec<Option<K>>,
    taken: Vec<bool>,
    group: Vec<u32>,
}

impl<K> Default for Split<K> {
    fn default() -> Self {
        Split {
            keys: Vec::new(),
            taken: Vec::new(),
            group: Vec::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Split<K> {
    /// Call `each` with every group of `rows` by `key`.
    pub fn each(
        &mut self,
        rows: &[u32],
        key: impl Fn(u32) -> Option<K>,
        mut each: impl FnMut(&[u32]),
    ) {
        self.keys.clear();
        self.keys.extend(rows.iter().map(|&r| key(r)));
        if rows.len() > SPLIT_PAIRWISE {
            let groups = Groups::by(rows.len(), |i| self.keys[i].clone());
            for g in groups.iter() {
                self.group.clear();
                self.group.extend(g.iter().map(|&i| rows[i as usize]));
                each(&self.group);
            }
            return;
        }
        self.taken.clear();
        self.taken.resize(rows.len(), false);
        for i in 0..rows.len() {
            let Some(k) = &self.keys[i] else { continue };
            if self.taken[i] {
                continue;
            }
            self.group.clear();
            self.group.push(rows[i]);
            let later = self.taken[i + 1..].iter_mut().zip(&self.keys[i + 1..]);
            for ((taken, key), &row) in later.zip(&rows[i + 1..]) {
                if !*taken && key.as_ref() == Some(k) {
                    *taken = true;
                    self.group.push(row);
                }
            }
            each(&self.group);
        }
    }
}

/// The rank of each distinct value in sorted order (0 for the smallest): sorting rows by these
/// small integers gives the order a sort by the values themselves would, with integer rather
/// than string comparisons.
pub fn ranks<K: Hash + Eq + Ord + Copy>(values: impl IntoIterator<Item = K>) -> FxHashMap<K, u32> {
    let mut seen: FxHashMap<K, u32> = FxHashMap::default();
    for v in values {
        seen.entry(v).or_insert(0);
    }
    let mut distinct: Vec<K> = seen.keys().copied().collect();
    distinct.sort_unstable();
    for (r, v) in distinct.into_iter().enumerate() {
        seen.insert(v, r as u32);
    }
    seen
}

/// Reorder `items` in place so that position `k` holds what was at `order[k]` (`order` a
/// permutation of the positions): each cycle of the permutation is followed with swaps, so no
/// second copy of the items is made, which matters for millions of wide rows.
///
/// `order` must be a permutation of `0..items.len()` (panics when the lengths differ).
pub fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    assert_eq!(order.len(), items.len(), "order and items differ in length");
    for start in 0..order.len() {
        // Follow the cycle through `start`, marking visited positions with usize::MAX.
        let mut k = start;
        while order[k] != usize::MAX {
            let from = order[k];
            order[k] = usize::MAX;
            if from == start || order[from] == usize::MAX {
                break;
            }
            items.swap(k, from);
            k = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_key_gives_what_the_map_gives() {
        let map: FxHashMap<u32, &str> = [(1, "a"), (2, "b")].into_iter().collect();
        let mut l = LastKey::new(&map);
        for k in [1, 1, 2, 3, 2, 2, 1, 3, 3] {
            assert_eq!(l.get(k), map.get(&k), "{k}");
        }
    }

    #[test]
    fn split_groups_as_groups_by_does_for_small_and_large_groups() {
        // Keys with None among them; 20 rows (compared pairwise) and 200 rows (hashed).
        for n in [0usize, 1, 20, 200] {
            let key = |r: u32| (r % 7 != 3).then_some(r % 5);
            let rows: Vec<u32> = (0..n as u32).map(|i| i * 3 + 1).collect();
            let want = Groups::by(rows.len(), |i| key(rows[i]));
            let want: Vec<Vec<u32>> = want
                .iter()
                .map(|g| g.iter().map(|&i| rows[i as usize]).collect())
                .collect();
            let mut got = Vec::new();
            let mut split = Split::default();
            split.each(&rows, key, |g| got.push(g.to_vec()));
            assert_eq!(got, want, "n = {n}");
            assert_eq!(
                got.iter().map(Vec::len).sum::<usize>(),
                rows.iter().filter(|&&r| key(r).is_some()).count()
            );
        }
    }

    #[test]
    fn permute_moves_each_item_to_its_place() {
        let order = vec![3, 0, 4, 1, 2, 5];
        let mut items = vec!["a", "b", "c", "d", "e", "f"];
        let want: Vec<&str> = order.iter().map(|&k| items[k]).collect();
        permute(&mut items, order);
        assert_eq!(items, want);
        let mut none: Vec<u8> = Vec::new();
        permute(&mut none, Vec::new());
        assert!(none.is_empty());
    }

    #[test]
    fn ranks_follow_the_sort_order_of_the_values() {
        let r = ranks(["pear", "apple", "pear", "fig"]);
        assert_eq!((r["apple"], r["fig"], r["pear"]), (0, 1, 2));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn groups_in_first_row_order_and_rows_in_input_order() {
        let keys = ["b", "a", "b", "c", "a", "b"];
        let g = Groups::by(keys.len(), |i| Some(keys[i]));
        let got: Vec<Vec<u32>> = g.iter().map(<[u32]>::to_vec).collect();
        assert_eq!(got, vec![vec![0, 2, 5], vec![1, 4], vec![3]]);
    }

    #[test]
    fn rows_without_a_key_are_left_out() {
        let keys = [Some(1), None, Some(1), None];
        let g = Groups::by(keys.len(), |i| keys[i]);
        assert_eq!(g.len(), 1);
        assert_eq!(g.get(0), &[0, 2]);
        let none = Groups::by(2, |_| None::<u8>);
        assert!(none.is_empty());
        assert_eq!(none.iter().count(), 0);
    }
}
