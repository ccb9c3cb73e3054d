//! Who may change things through the socket.
//!
//! The socket file is `0660`, group [`ADMIN_GROUP`] when that group exists
//! (root's otherwise), so the file mode already keeps strangers out. The
//! daemon checks again with the connecting process's credentials
//! (SO_PEERCRED) so that an operator who opens the socket wider for
//! read-only monitoring does not also hand out reloads, flushes and traces.

use std::ffi::CString;

pub use secgroup_api::ADMIN_GROUP;

/// The credentials of the process at the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups; empty when they could not be read.
    pub groups: Vec<u32>,
}

/// Root, and members of the admin group, may call the mutating endpoints.
pub fn may_mutate(peer: &Peer, admin_gid: Option<u32>) -> bool {
    peer.uid == 0 || admin_gid.is_some_and(|gid| peer.gid == gid || peer.groups.contains(&gid))
}

/// The gid of [`ADMIN_GROUP`], if the group exists.
pub fn admin_gid() -> Option<u32> {
    group_gid(ADMIN_GROUP)
}

fn group_gid(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: every pointer is valid for the call and buf's length is
    // passed; result points at `group` or is null afterwards.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            &mut group,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(group.gr_gid)
}

/// The supplementary groups of process `pid`, from `/proc/PID/status`.
/// SO_PEERCRED carries only the primary gid.
pub fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|status| parse_groups(&status))
        .unwrap_or_default()
}

/// The `Groups:` line of a `/proc/PID/status` file.
fn parse_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorisation() {
        let peer = |uid, gid, groups: &[u32]| Peer {
            uid,
            gid,
            groups: groups.to_vec(),
        };
        let cases = [
            (peer(0, 0, &[]), None, true),
            (peer(0, 0, &[]), Some(990), true),
            (peer(1000, 1000, &[]), None, false),
            (peer(1000, 1000, &[]), Some(990), false),
            (peer(1000, 990, &[]), Some(990), true),
            (peer(1000, 1000, &[27, 990]), Some(990), true),
            (peer(1000, 1000, &[27, 991]), Some(990), false),
            (peer(65534, 65534, &[]), Some(990), false),
        ];
        for (peer, admin_gid, expected) in cases {
            assert_eq!(
                may_mutate(&peer, admin_gid),
                expected,
                "{peer:?} with admin gid {admin_gid:?}"
            );
        }
    }

    #[test]
    fn groups_from_proc_status() {
        let cases = [
            (
                "Name:\tx\nGid:\t1000\t1000\t1000\t1000\nGroups:\t4 27 990 \nNgid:\t0\n",
                vec![4, 27, 990],
            ),
            ("Name:\tx\nGroups:\t\n", vec![]),
            ("Name:\tx\n", vec![]),
        ];
        for (status, expected) in cases {
            assert_eq!(parse_groups(status), expected, "{status:?}");
        }
        // Our own groups, read the same way the daemon reads a peer's.
        let own = supplementary_groups(std::process::id() as i32);
        let mut expected = vec![0 as libc::gid_t; 256];
        // SAFETY: the buffer holds 256 gids and its length is passed.
        let n = unsafe { libc::getgroups(256, expected.as_mut_ptr()) };
        assert!(n >= 0, "getgroups failed");
        expected.truncate(n as usize);
        let mut own_sorted = own.clone();
        own_sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(own_sorted, expected);
    }

    #[test]
    fn group_lookup() {
        assert_eq!(group_gid("root"), Some(0));
        assert_eq!(group_gid("no-such-group-secgroup-test"), None);
    }
}
