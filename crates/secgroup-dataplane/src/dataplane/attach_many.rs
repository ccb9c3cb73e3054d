//! Hooking many interfaces at once: what a daemon does when it starts on
//! a host of a thousand VMs, or adopts the pins of its predecessor.
//!
//! Creating or updating an XDP or TCX link can wait in the kernel (RCU
//! grace periods, the RTNL lock); one interface after another, a
//! thousand took seconds. Here a few worker threads do the same steps as
//! [`Dataplane::attach`] with plain `bpf(2)` calls on the programs' fds,
//! which any thread may make: adopt the pinned pair if there is one
//! (`BPF_LINK_UPDATE` to our programs), else create both links
//! (`BPF_LINK_CREATE`, driver-mode XDP first) and pin both or neither.
//! Waits overlap and RTNL is held by one at a time, not for the
//! whole run. Only with a pin directory: without one the links belong to
//! aya's program objects and [`Dataplane::attach`] runs one by one.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::attach::{attach_info, remove_pins};
use super::{AttachInfo, Dataplane};
use crate::error::DataplaneError;
use crate::netns;
use crate::object::{PROG_TC_INGRESS, PROG_XDP_EGRESS};
use crate::sys::{self, ObjAttr, c_path, new_fd, obj_get};

const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_LINK_UPDATE: libc::c_long = 29;
/// `enum bpf_attach_type`.
const BPF_XDP: u32 = 37;
const BPF_TCX_EGRESS: u32 = 47;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// Enough to overlap the kernel's waits on two cores without a thread
/// per interface.
const WORKERS: usize = 16;
/// Fewer interfaces than this are attached at the normal pace even when
/// expediting is allowed: a few grace periods do not justify a host-wide
/// setting.
const EXPEDITE_FROM: usize = 8;

/// `bpf_attr.link_create` (with the `tcx` member of its union).
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    pad: u32,
    expected_revision: u64,
}

/// `bpf_attr.link_update`.
#[repr(C)]
#[derive(Default)]
struct LinkUpdateAttr {
    link_fd: u32,
    new_prog_fd: u32,
    flags: u32,
    old_prog_fd: u32,
}

fn link_create(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    attach_type: u32,
    flags: u32,
) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type,
        flags,
        ..LinkCreateAttr::default()
    };
    sys::bpf(BPF_LINK_CREATE, &mut attr).map(new_fd)
}

fn link_update(link: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = LinkUpdateAttr {
        link_fd: link.as_raw_fd() as u32,
        new_prog_fd: prog.as_raw_fd() as u32,
        ..LinkUpdateAttr::default()
    };
    sys::bpf(BPF_LINK_UPDATE, &mut attr).map(|_| ())
}

fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let path = c_path(path)?;
    let mut attr = ObjAttr {
        pathname: path.as_ptr() as u64,
        bpf_fd: fd.as_raw_fd() as u32,
        ..ObjAttr::default()
    };
    sys::bpf(BPF_OBJ_PIN, &mut attr).map(|_| ())
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> DataplaneError + 'a {
    move |source| DataplaneError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The two programs' fds, shared by the workers.
#[derive(Clone, Copy)]
struct Programs<'a> {
    xdp: BorrowedFd<'a>,
    tc: BorrowedFd<'a>,
}

impl Dataplane {
    /// [`attach`](Self::attach) for every name of `names`, several at a
    /// time; one result per name, in the same order. Interfaces are
    /// independent: one failing changes nothing for the others.
    pub fn attach_many(&mut self, names: &[String]) -> Vec<Result<AttachInfo, DataplaneError>> {
        let Some(dir) = self.pin_dir.as_ref().map(|d| d.join("links")) else {
            return names.iter().map(|name| self.attach(name)).collect();
        };
        if names.len() < 2 {
            return names.iter().map(|name| self.attach(name)).collect();
        }
        let fd = |name: &'static str| {
            self.ebpf
                .program(name)
                .and_then(|p| p.fd().ok())
                .map(AsFd::as_fd)
                .ok_or(DataplaneError::MissingProgram { name })
        };
        let (Ok(xdp), Ok(tc)) = (fd(PROG_XDP_EGRESS), fd(PROG_TC_INGRESS)) else {
            // Cannot happen with our object; `attach` says what is missing.
            return names.iter().map(|name| self.attach(name)).collect();
        };
        let programs = Programs { xdp, tc };
        // Held until every worker is done.
        let _expedited = match self
            .expedite
            .as_ref()
            .filter(|_| names.len() >= EXPEDITE_FROM)
        {
            Some(expedite) => match expedite.begin() {
                Ok(on) => Some(on),
                Err(e) => {
                    self.expedite_failure =
                        Some(format!("turning {} on: {e}", expedite.switch.display()));
                    None
                }
            },
            None => None,
        };
        let next = AtomicUsize::new(0);
        let mut results: Vec<(usize, Result<AttachInfo, DataplaneError>)> =
            std::thread::scope(|s| {
                let workers: Vec<_> = (0..WORKERS.min(names.len()))
                    .map(|_| {
                        s.spawn(|| {
                            let mut done = Vec::new();
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                let Some(name) = names.get(i) else {
                                    return done;
                                };
                                done.push((i, attach_one(programs, &dir, name)));
                            }
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| w.join().unwrap_or_default())
                    .collect()
            });
        results.sort_by_key(|(i, _)| *i);
        // A worker that panicked leaves holes: say so for those names.
        let mut out: Vec<Result<AttachInfo, DataplaneError>> = Vec::with_capacity(names.len());
        let mut results = results.into_iter().peekable();
        for (i, name) in names.iter().enumerate() {
            match results.next_if(|(j, _)| *j == i) {
                Some((_, result)) => out.push(result),
                None => out.push(Err(DataplaneError::Io {
                    action: "attaching (the worker thread panicked)",
                    path: PathBuf::from(name),
                    source: io::Error::other("worker panicked"),
                })),
            }
        }
        out
    }
}

/// One interface: adopt its pinned pair, else create and pin a new one.
fn attach_one(
    programs: Programs<'_>,
    dir: &Path,
    name: &str,
) -> Result<AttachInfo, DataplaneError> {
    let ifindex = netns::ifindex(name)?;
    let xdp_path = dir.join(format!("{ifindex}_xdp"));
    let tc_path = dir.join(format!("{ifindex}_tcx"));
    let adopted = adopt(programs, &xdp_path, &tc_path);
    if !adopted {
        create_and_pin(programs, ifindex, &xdp_path, &tc_path)?;
    }
    attach_info(ifindex, None, adopted)
}

/// Points a pinned pair at our programs; `false` (and no pins left) when
/// there is no usable pair.
fn adopt(programs: Programs<'_>, xdp_path: &Path, tc_path: &Path) -> bool {
    if !xdp_path.is_file() || !tc_path.is_file() {
        remove_pins(&[xdp_path, tc_path]);
        return false;
    }
    let update = |path: &Path, prog| obj_get(path).and_then(|link| link_update(link.as_fd(), prog));
    // A link whose interface is gone refuses the update: start afresh.
    let xdp_ok = update(xdp_path, programs.xdp).is_ok();
    let tc_ok = update(tc_path, programs.tc).is_ok();
    if !(xdp_ok && tc_ok) {
        remove_pins(&[xdp_path, tc_path]);
        return false;
    }
    true
}

/// Both links, pinned; on any failure neither stays (an unpinned link is
/// detached when its last fd closes).
fn create_and_pin(
    programs: Programs<'_>,
    ifindex: u32,
    xdp_path: &Path,
    tc_path: &Path,
) -> Result<(), DataplaneError> {
    let what = PathBuf::from(format!("interface {ifindex}"));
    let xdp = link_create(programs.xdp, ifindex, BPF_XDP, XDP_FLAGS_DRV_MODE)
        .or_else(|_| link_create(programs.xdp, ifindex, BPF_XDP, XDP_FLAGS_SKB_MODE))
        .map_err(io_err(
            "attaching program sg_xdp_egress (BPF_LINK_CREATE) to",
            &what,
        ))?;
    let tc = link_create(programs.tc, ifindex, BPF_TCX_EGRESS, 0).map_err(io_err(
        "attaching program sg_tc_ingress (BPF_LINK_CREATE) to",
        &what,
    ))?;
    obj_pin(xdp.as_fd(), xdp_path).map_err(io_err("pinning the XDP link at", xdp_path))?;
    if let Err(e) = obj_pin(tc.as_fd(), tc_path) {
        // The XDP pin would keep its hook alone.
        remove_pins(&[xdp_path]);
        return Err(io_err("pinning the TCX link at", tc_path)(e));
    }
    Ok(())
}
