//! Turns a first-match rule list into the bit-vector tables the eBPF data
//! plane looks packets up in, and simulates that lookup. Pure: no I/O.
//!
//! # The problem
//!
//! An instance's rules for one direction are a first-match list of up to
//! [`MAX_RULES`] rules; each matches a set of remote addresses (a union of
//! prefixes) and a set of L4 values (protocol, destination port). Walking the
//! list costs O(rules) per packet. A table instead costs the same per packet
//! whatever the rule count: two longest-prefix lookups, two class lookups and
//! an AND over at most 64 words.
//!
//! # The table
//!
//! Rule position `i` is bit `i` of a [`RuleSet`]. Each of the two fields gets
//! its own LPM tries:
//!
//! - remote address: one trie per family ([`Table::v4`], [`Table::v6`]);
//! - L4: one trie over the 24-bit value `protocol << 16 | port`
//!   ([`Table::l4`]). A service of every protocol is the `/0` prefix, a
//!   protocol with every port `/8`, a port range of a protocol the minimal
//!   list of prefixes under that protocol ([`port_prefixes`], `/9`..`/24`).
//!   Protocols other than TCP and UDP look up port 0 and their rules always
//!   cover every port. The kernel keys start with the 32-bit table id, so
//!   their prefix lengths are 32 more: every protocol is 32, `tcp` 40,
//!   `tcp:80` 56 ([`L4Prefix::kernel_prefixlen`]).
//!
//! Every prefix some rule names is inserted, and its value is the set of
//! rules that name it *or any prefix enclosing it*. Distinct sets are stored
//! once as classes ([`Table::classes`]), and an entry holds a class id: the
//! thousands of /32 members of a referenced security group share one class.
//!
//! A packet's verdict: look up its remote address and its (protocol, port),
//! AND the two classes, take the lowest set bit. No entry, or an empty AND,
//! is the default drop.
//!
//! # Why a longest-prefix lookup returns exactly the matching rules
//!
//! Take a value `x` of one field and let `L` be the longest inserted prefix
//! containing it. The set stored at `L` is exactly the set of rules whose
//! field contains `x`:
//!
//! - every rule in it names some `Q ⊇ L ∋ x`, so its field contains `x`;
//! - conversely, a rule whose field contains `x` names some `Q ∋ x`. `Q` was
//!   inserted, and two prefixes containing the same value are nested, so the
//!   longest one, `L`, lies inside `Q`: the fold put the rule in `L`'s set;
//! - when no inserted prefix contains `x`, no rule's field does, and there is
//!   no entry to find.
//!
//! A rule matches a packet iff its remote field contains the remote address
//! and its L4 field contains (protocol, port): the two conditions are
//! independent, so the AND of the two exact sets is exactly the set of
//! matching rules, and its lowest bit is the first match.
//!
//! (The stored set is "rules with an enclosing prefix", which can be smaller
//! than "rules whose field covers the prefix": a rule naming both halves of a
//! /24 that another rule inserted is missing from the /24's set. That is
//! fine: for any `x` in the /24, one of the halves is a longer inserted
//! prefix containing `x`, and the lookup lands there.)
//!
//! # Building
//!
//! Rules with identical remote lists (the same security group or address
//! set) or identical service lists are grouped first, so a 10,000-member
//! group referenced by many rules is expanded once. Each field's
//! (prefix, group) pairs are then sorted, which lists every prefix before the
//! prefixes it covers, and folded along that order with a stack of enclosing
//! prefixes: O(distinct prefixes × 64 words), plus the sort. An entry whose
//! set equals its parent's is dropped, since the lookup would find the same
//! set one level up.
//!
//! # Worked example
//!
//! ```text
//! rule 0: drop   tcp:22     from 10.1.0.0/16
//! rule 1: accept tcp:20-25  from 10.0.0.0/8
//! rule 2: accept all        from 0.0.0.0/0
//!
//! classes: C0 = {2}  C1 = {1, 2}  C2 = {0, 1, 2}
//!
//! v4 entries                 l4 entries
//!   0.0.0.0/0    -> C0         all        (/0)  -> C0
//!   10.0.0.0/8   -> C1         tcp:20-23  (/22) -> C1
//!   10.1.0.0/16  -> C2         tcp:22     (/24) -> C2
//!                              tcp:24-25  (/23) -> C1
//!
//! tcp 22 from 10.1.2.3:    C2 & C2 = {0, 1, 2} -> rule 0 (drop)
//! tcp 22 from 10.9.9.9:    C1 & C2 = {1, 2}    -> rule 1
//! tcp 25 from 10.1.2.3:    C2 & C1 = {1, 2}    -> rule 1
//! udp 53 from 10.1.2.3:    C2 & C0 = {2}       -> rule 2
//! tcp 22 from 2001:db8::1: no v6 entry         -> default drop
//! ```
//!
//! The range 20-25 splits into 20-23 and 24-25; tcp:22 sits inside 20-23 and
//! so inherits rule 1, and everything inherits rule 2 from the `/0`s. The
//! same example, checked:
//!
//! ```
//! # use secgroup_classifier::{build, L4Prefix};
//! # use secgroup_model::{Action, Direction, PortRange, Ports, Protocol, Service, SgId};
//! # use secgroup_policy::{EffectiveRule, RuleKey, RuleList, RuleOrigin};
//! # let rule = |index: usize, action, protocol, ports: &[(u16, u16)], remote: &str| EffectiveRule {
//! #     origin: RuleOrigin { sg: SgId::new("sg-example").unwrap(), direction: Direction::Ingress, index, key: RuleKey::Content { digest: index as u64, nth: 0 } },
//! #     action,
//! #     log: false,
//! #     services: vec![Service {
//! #         protocol,
//! #         ports: match ports {
//! #             [] => Ports::All,
//! #             ranges => Ports::List(ranges.iter().map(|&(lo, hi)| PortRange::new(lo, hi).unwrap()).collect()),
//! #         },
//! #     }],
//! #     remotes: vec![remote.parse().unwrap()],
//! # };
//! let list = RuleList::from(vec![
//!     rule(0, Action::Drop, Protocol::Number(6), &[(22, 22)], "10.1.0.0/16"),
//!     rule(1, Action::Accept, Protocol::Number(6), &[(20, 25)], "10.0.0.0/8"),
//!     rule(2, Action::Accept, Protocol::All, &[], "0.0.0.0/0"),
//! ]);
//! let table = build(&list).unwrap();
//!
//! let classes: Vec<Vec<usize>> = table.classes.iter().map(|c| c.iter().collect()).collect();
//! assert_eq!(classes, [vec![2], vec![1, 2], vec![0, 1, 2]]);
//! let v4: Vec<String> = table.v4.iter().map(|(p, c)| format!("{p} -> C{c}")).collect();
//! assert_eq!(v4, ["0.0.0.0/0 -> C0", "10.0.0.0/8 -> C1", "10.1.0.0/16 -> C2"]);
//! let l4: Vec<String> = table.l4.iter().map(|(p, c)| format!("{p} -> C{c}")).collect();
//! assert_eq!(l4, ["all -> C0", "tcp:20-23 -> C1", "tcp:22 -> C2", "tcp:24-25 -> C1"]);
//!
//! let ip = |s: &str| s.parse().unwrap();
//! assert_eq!(table.classify(6, 22, ip("10.1.2.3")), Some(0));
//! assert_eq!(table.classify(6, 22, ip("10.9.9.9")), Some(1));
//! assert_eq!(table.classify(6, 25, ip("10.1.2.3")), Some(1));
//! assert_eq!(table.classify(17, 53, ip("10.1.2.3")), Some(2));
//! assert_eq!(table.classify(6, 22, ip("2001:db8::1")), None);
//! ```

mod classes;
mod error;
mod fold;
mod group;
mod l4;
mod ruleset;
mod table;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::ClassifierError;
pub use l4::{L4Prefix, port_prefixes};
pub use ruleset::{MAX_RULES, RULESET_WORDS, RuleSet};
pub use table::{Table, TableRule, TableStats, build};
