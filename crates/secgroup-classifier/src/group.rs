//! Grouping of rules whose field lists are identical.
//!
//! Rules that reference the same security group or address set carry the
//! same (possibly 10,000-entry) remote list. Expanding each copy into
//! prefixes would cost O(rules × members); grouping first makes the rest of
//! the build proportional to the distinct lists only.

use std::collections::HashMap;
use std::hash::Hash;

/// The groups of identical lists among `lists`.
pub(crate) struct Groups<'a, T> {
    /// For each list, its group.
    pub(crate) of: Vec<u32>,
    /// For each group, its content.
    pub(crate) lists: Vec<&'a [T]>,
}

/// Numbers the distinct lists in order of first appearance.
///
/// Lists are bucketed by their length and a few sampled elements, then
/// compared whole within a bucket: hashing every element of every copy
/// would cost more than the element-wise comparison, which for identical
/// lists is a tight loop over contiguous memory.
pub(crate) fn group_identical<'a, T: Eq + Hash>(
    lists: impl IntoIterator<Item = &'a [T]>,
) -> Groups<'a, T> {
    let mut groups = Groups {
        of: Vec::new(),
        lists: Vec::new(),
    };
    let mut buckets: HashMap<Sample<'a, T>, Vec<u32>> = HashMap::new();
    for list in lists {
        let bucket = buckets.entry(sample(list)).or_default();
        let group = match bucket.iter().find(|&&g| groups.lists[g as usize] == list) {
            Some(&g) => g,
            None => {
                // At most one group per list, and lists number at most
                // MAX_RULES (checked by the caller).
                let g = groups.lists.len() as u32;
                groups.lists.push(list);
                bucket.push(g);
                g
            }
        };
        groups.of.push(group);
    }
    groups
}

type Sample<'a, T> = (usize, [Option<&'a T>; 5]);

fn sample<T>(list: &[T]) -> Sample<'_, T> {
    let n = list.len();
    let at = |i: usize| list.get(i);
    (
        n,
        [
            at(0),
            at(n / 4),
            at(n / 2),
            at(3 * n / 4),
            n.checked_sub(1).and_then(at),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_identical_lists() {
        let a = [1, 2, 3, 4, 5, 6];
        let b = [1, 2, 3, 4, 5, 6];
        // Same length and samples as `a`, different in between.
        let c = [1, 2, 9, 4, 5, 6];
        let empty: [i32; 0] = [];
        let lists: [&[i32]; 5] = [&a, &empty, &b, &c, &empty];
        let groups = group_identical(lists);
        assert_eq!(groups.of, [0, 1, 0, 2, 1]);
        assert_eq!(groups.lists, [&a[..], &empty[..], &c[..]]);
    }
}
