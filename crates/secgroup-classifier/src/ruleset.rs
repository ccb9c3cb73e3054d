//! A set of rule positions, laid out as the kernel's `struct sg_ruleset`.

use std::fmt;

/// Rules one table can hold (`SG_MAX_RULES`).
pub const MAX_RULES: usize = 4096;

/// 64-bit words of a [`RuleSet`] (`SG_RULESET_WORDS`).
pub const RULESET_WORDS: usize = MAX_RULES / 64;

/// A set of rule positions `0..MAX_RULES`: bit `i % 64` of `words[i / 64]`
/// (least significant bit first) is rule `i`.
///
/// Invariant: bit `w` of `summary` is set iff `words[w] != 0`. The methods
/// keep it; code that writes the fields directly must too, because
/// [`RuleSet::first_common`] (and the kernel) only visit the words the
/// summaries mark.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RuleSet {
    pub summary: u64,
    pub words: [u64; RULESET_WORDS],
}

impl RuleSet {
    pub const EMPTY: RuleSet = RuleSet {
        summary: 0,
        words: [0; RULESET_WORDS],
    };

    /// Adds rule `pos`. Positions at or past [`MAX_RULES`] are a caller bug
    /// (`build` refuses longer lists before it gets here).
    pub fn insert(&mut self, pos: usize) {
        debug_assert!(pos < MAX_RULES, "rule position {pos} out of range");
        let word = pos / 64;
        self.words[word] |= 1 << (pos % 64);
        self.summary |= 1 << word;
    }

    pub fn contains(&self, pos: usize) -> bool {
        pos < MAX_RULES && self.words[pos / 64] & (1 << (pos % 64)) != 0
    }

    /// Adds every rule of `other`.
    pub fn union_with(&mut self, other: &RuleSet) {
        let mut marked = other.summary;
        while marked != 0 {
            let w = marked.trailing_zeros() as usize;
            self.words[w] |= other.words[w];
            marked &= marked - 1;
        }
        self.summary |= other.summary;
    }

    /// The lowest position in both sets: the first rule that matches both
    /// fields. Visits only the words both summaries mark, the way the BPF
    /// program does, so a miss costs at most 64 word ANDs and usually far
    /// fewer.
    pub fn first_common(&self, other: &RuleSet) -> Option<usize> {
        let mut marked = self.summary & other.summary;
        while marked != 0 {
            let w = marked.trailing_zeros() as usize;
            let both = self.words[w] & other.words[w];
            if both != 0 {
                return Some(w * 64 + both.trailing_zeros() as usize);
            }
            marked &= marked - 1;
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.summary == 0
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Positions in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    w * 64 + bit
                })
            })
        })
    }
}

impl Default for RuleSet {
    fn default() -> RuleSet {
        RuleSet::EMPTY
    }
}

impl FromIterator<usize> for RuleSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> RuleSet {
        let mut set = RuleSet::EMPTY;
        for pos in iter {
            set.insert(pos);
        }
        set
    }
}

/// `{0, 3, 64}`: the positions, not 64 words of mostly zeros.
impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(positions: &[usize]) -> RuleSet {
        positions.iter().copied().collect()
    }

    #[test]
    fn insert_keeps_summary() {
        let s = set(&[0, 63, 64, 4095]);
        assert_eq!(s.summary, 1 | 1 << 1 | 1 << 63);
        assert_eq!(s.words[0], 1 | 1 << 63);
        assert_eq!(s.words[1], 1);
        assert_eq!(s.words[63], 1 << 63);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 63, 64, 4095]);
        assert_eq!(s.len(), 4);
        assert!(s.contains(4095) && !s.contains(1) && !s.contains(MAX_RULES));
    }

    #[test]
    fn first_common() {
        let cases: &[(&[usize], &[usize], Option<usize>)] = &[
            (&[], &[], None),
            (&[1], &[], None),
            (&[1, 5], &[5, 1], Some(1)),
            (&[3, 700], &[700, 4000], Some(700)),
            // Both summaries mark word 0 but the words share nothing: the
            // search must go on to the next common word.
            (&[0, 130], &[1, 130], Some(130)),
            (&[0, 64], &[1, 65], None),
            (&[4095], &[4095], Some(4095)),
        ];
        for &(a, b, expected) in cases {
            let got = set(a).first_common(&set(b));
            if got != expected {
                panic!("first_common({a:?}, {b:?}) = {got:?}, expected {expected:?}");
            }
        }
    }

    #[test]
    fn union_with() {
        let mut s = set(&[1, 200]);
        s.union_with(&set(&[2, 4000]));
        assert_eq!(s, set(&[1, 2, 200, 4000]));
        assert_eq!(format!("{s:?}"), "{1, 2, 200, 4000}");
    }
}
