//! Half-open UTC intervals `[start, end)` and normalised sets of them.
//!
//! Availability is computed as set algebra: working windows − (absences ∪ busy ∪ appointments).
//! Working in UTC instants keeps that algebra free of time-zone questions; local time only matters
//! where windows are built (`pattern.rs`) and where slot starts are generated (`availability.rs`).

use jiff::{SignedDuration, Timestamp};

/// A non-empty half-open interval of instants, `[start, end)`.
///
/// Half-open so that back-to-back meetings (10:00–10:30, 10:30–11:00) do not overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    start: Timestamp,
    end: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    #[error("interval end {end} is not after its start {start}")]
    Empty { start: Timestamp, end: Timestamp },
    #[error("interval moved outside the representable range of instants")]
    OutOfRange,
}

impl Interval {
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Self, IntervalError> {
        if start < end { Ok(Interval { start, end }) } else { Err(IntervalError::Empty { start, end }) }
    }

    /// `[start, start + duration)`.
    pub fn starting_at(start: Timestamp, duration: SignedDuration) -> Result<Self, IntervalError> {
        let end = start.checked_add(duration).map_err(|_| IntervalError::OutOfRange)?;
        Interval::new(start, end)
    }

    pub fn start(&self) -> Timestamp {
        self.start
    }

    pub fn end(&self) -> Timestamp {
        self.end
    }

    pub fn duration(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies wholly inside `self`.
    pub fn contains(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn intersection(&self, other: &Interval) -> Option<Interval> {
        Interval::new(self.start.max(other.start), self.end.min(other.end)).ok()
    }

    /// `[start - before, end + after)`: the stretch a slot occupies with its buffers.
    pub fn widened(&self, before: SignedDuration, after: SignedDuration) -> Result<Interval, IntervalError> {
        let start = self.start.checked_sub(before).map_err(|_| IntervalError::OutOfRange)?;
        let end = self.end.checked_add(after).map_err(|_| IntervalError::OutOfRange)?;
        Interval::new(start, end)
    }
}

/// Intervals kept sorted, pairwise disjoint and non-adjacent (touching intervals are merged), so
/// every operation is a linear merge and "is this slot free" is one binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntervalSet {
    items: Vec<Interval>,
}

impl IntervalSet {
    pub fn new() -> Self {
        IntervalSet::default()
    }

    /// Normalises any collection of intervals (unsorted, overlapping, duplicated).
    pub fn from_intervals(intervals: impl IntoIterator<Item = Interval>) -> Self {
        let mut items: Vec<Interval> = intervals.into_iter().collect();
        items.sort_unstable();
        IntervalSet { items: coalesce_sorted(items) }
    }

    pub fn as_slice(&self) -> &[Interval] {
        &self.items
    }

    pub fn iter(&self) -> impl Iterator<Item = &Interval> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every instant in `self` or `other`.
    pub fn union(&self, other: &IntervalSet) -> IntervalSet {
        // Merge two sorted runs, then coalesce: O(n + m).
        let (a, b) = (&self.items, &other.items);
        let mut merged = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if a[i] <= b[j] {
                merged.push(a[i]);
                i += 1;
            } else {
                merged.push(b[j]);
                j += 1;
            }
        }
        merged.extend_from_slice(&a[i..]);
        merged.extend_from_slice(&b[j..]);
        IntervalSet { items: coalesce_sorted(merged) }
    }

    /// Every instant in `self` and not in `other`.
    pub fn subtract(&self, other: &IntervalSet) -> IntervalSet {
        let b = &other.items;
        let mut out = Vec::with_capacity(self.items.len());
        // `first` only moves past subtrahends that end before the current minuend starts; minuends
        // are sorted, so those can never matter again.
        let mut first = 0;
        for a in &self.items {
            while first < b.len() && b[first].end <= a.start {
                first += 1;
            }
            let mut cursor = a.start;
            for cut in &b[first..] {
                if cut.start >= a.end {
                    break;
                }
                if cut.start > cursor {
                    out.push(Interval { start: cursor, end: cut.start });
                }
                cursor = cursor.max(cut.end);
                if cursor >= a.end {
                    break;
                }
            }
            if cursor < a.end {
                out.push(Interval { start: cursor, end: a.end });
            }
        }
        IntervalSet { items: out }
    }

    /// Every instant in both `self` and `other`.
    pub fn intersect(&self, other: &IntervalSet) -> IntervalSet {
        let (a, b) = (&self.items, &other.items);
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if let Some(common) = a[i].intersection(&b[j]) {
                out.push(common);
            }
            if a[i].end <= b[j].end {
                i += 1;
            } else {
                j += 1;
            }
        }
        IntervalSet { items: out }
    }

    /// Whether `interval` lies wholly inside one member (members are non-adjacent, so "inside the
    /// union" and "inside one member" agree).
    pub fn contains(&self, interval: &Interval) -> bool {
        let idx = self.items.partition_point(|iv| iv.end < interval.end);
        self.items.get(idx).is_some_and(|iv| iv.start <= interval.start)
    }

    /// Whether any instant of `interval` is in the set.
    pub fn overlaps(&self, interval: &Interval) -> bool {
        let idx = self.items.partition_point(|iv| iv.end <= interval.start);
        self.items.get(idx).is_some_and(|iv| iv.start < interval.end)
    }
}

/// Merges overlapping or touching neighbours of a sorted vector in place.
fn coalesce_sorted(mut items: Vec<Interval>) -> Vec<Interval> {
    let mut write = 0;
    for read in 0..items.len() {
        let cur = items[read];
        if write > 0 && cur.start <= items[write - 1].end {
            let last = &mut items[write - 1];
            last.end = last.end.max(cur.end);
        } else {
            items[write] = cur;
            write += 1;
        }
    }
    items.truncate(write);
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).expect("test instant in range")
    }

    fn iv(a: i64, b: i64) -> Interval {
        Interval::new(t(a), t(b)).expect("test interval non-empty")
    }

    fn set(pairs: &[(i64, i64)]) -> IntervalSet {
        IntervalSet::from_intervals(pairs.iter().map(|&(a, b)| iv(a, b)))
    }

    #[test]
    fn empty_interval_is_rejected() {
        assert!(Interval::new(t(5), t(5)).is_err());
        assert!(Interval::new(t(6), t(5)).is_err());
    }

    #[test]
    fn normalisation_merges_overlapping_and_touching() {
        assert_eq!(set(&[(5, 8), (0, 2), (2, 3), (7, 10), (20, 21)]), set(&[(0, 3), (5, 10), (20, 21)]));
        assert_eq!(set(&[(0, 3), (5, 10), (20, 21)]).len(), 3);
    }

    #[test]
    fn subtraction_cuts_holes_and_edges() {
        let a = set(&[(0, 10), (20, 30)]);
        let b = set(&[(-5, 1), (3, 4), (8, 22), (25, 26), (29, 40)]);
        assert_eq!(a.subtract(&b), set(&[(1, 3), (4, 8), (22, 25), (26, 29)]));
        assert_eq!(a.subtract(&IntervalSet::new()), a);
        assert!(a.subtract(&set(&[(-100, 100)])).is_empty());
    }

    #[test]
    fn union_and_intersection() {
        let a = set(&[(0, 10), (20, 30)]);
        let b = set(&[(5, 12), (30, 31), (40, 41)]);
        assert_eq!(a.union(&b), set(&[(0, 12), (20, 31), (40, 41)]));
        assert_eq!(a.intersect(&b), set(&[(5, 10)]));
    }

    #[test]
    fn contains_and_overlaps_are_half_open() {
        let a = set(&[(0, 10), (20, 30)]);
        assert!(a.contains(&iv(0, 10)));
        assert!(a.contains(&iv(22, 23)));
        assert!(!a.contains(&iv(9, 21)));
        assert!(!a.contains(&iv(10, 11)));
        assert!(a.overlaps(&iv(9, 11)));
        assert!(!a.overlaps(&iv(10, 20)));
        assert!(!a.overlaps(&iv(30, 31)));
    }

    fn arb_set() -> impl Strategy<Value = IntervalSet> {
        prop::collection::vec((0i64..200, 1i64..30), 0..12)
            .prop_map(|v| IntervalSet::from_intervals(v.into_iter().map(|(a, len)| iv(a, a + len))))
    }

    proptest! {
        /// Set algebra agrees with a pointwise model on every integer second.
        #[test]
        fn algebra_matches_pointwise_model(a in arb_set(), b in arb_set()) {
            let inside = |s: &IntervalSet, x: i64| s.overlaps(&iv(x, x + 1));
            let (u, d, i) = (a.union(&b), a.subtract(&b), a.intersect(&b));
            for x in -1..240 {
                prop_assert_eq!(inside(&u, x), inside(&a, x) || inside(&b, x));
                prop_assert_eq!(inside(&d, x), inside(&a, x) && !inside(&b, x));
                prop_assert_eq!(inside(&i, x), inside(&a, x) && inside(&b, x));
            }
            for s in [&u, &d, &i] {
                prop_assert_eq!(s, &IntervalSet::from_intervals(s.iter().copied()), "not normalised");
            }
        }
    }
}
