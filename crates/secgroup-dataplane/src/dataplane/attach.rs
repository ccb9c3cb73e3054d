//! Hooks on interfaces: both programs attached and pinned as a pair, or
//! neither; pinned links of a previous owner adopted; the XDP mode as the
//! kernel reports it.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::tc::{SchedClassifierLink, TcAttachOptions};
use aya::programs::{LinkOrder, TcAttachType, XdpMode};

use super::{AttachInfo, Dataplane, OwnedLinks};
use crate::error::DataplaneError;
use crate::object::{PROG_TC_INGRESS, PROG_XDP_EGRESS};
use crate::{linkinfo, netns};

/// Links just created, before they are pinned or kept.
struct FreshLinks {
    ifindex: u32,
    xdp: aya::programs::xdp::XdpLinkId,
    tc: aya::programs::tc::SchedClassifierLinkId,
}

impl Dataplane {
    /// Where an interface's links are pinned. No dots: bpffs reserves
    /// names containing one (EPERM).
    fn link_paths(&self, ifindex: u32) -> Option<(PathBuf, PathBuf)> {
        let dir = self.pin_dir.as_ref()?.join("links");
        Some((
            dir.join(format!("{ifindex}_xdp")),
            dir.join(format!("{ifindex}_tcx")),
        ))
    }

    /// Attaches both hooks to `ifname` in the calling thread's network
    /// namespace. With a pin directory the links are pinned (they keep
    /// filtering when this process exits) and existing pins for the
    /// interface are re-pointed at this process's programs.
    pub fn attach(&mut self, ifname: &str) -> Result<AttachInfo, DataplaneError> {
        let ifindex = netns::ifindex(ifname)?;
        let adopted = self.adopt_links(ifindex)?;
        if !adopted {
            let fresh = self.create_links(ifname, ifindex)?;
            self.keep_links(fresh)?;
        }
        attach_info(ifindex, None, adopted)
    }

    /// Attaches inside the network namespace at `netns`. Link creation and
    /// the mode query run on the namespace's thread (interface names and
    /// ifindexes resolve there); adoption and pinning happen here.
    pub fn attach_in(&mut self, netns: &Path, ifname: &str) -> Result<AttachInfo, DataplaneError> {
        let ifindex = netns::run_in(netns, || netns::ifindex(ifname))??;
        let adopted = self.adopt_links(ifindex)?;
        if !adopted {
            let fresh = netns::run_in(netns, || self.create_links(ifname, ifindex))??;
            self.keep_links(fresh)?;
        }
        attach_info(ifindex, Some(netns), adopted)
    }

    /// Creates both links, driver-mode XDP first, generic if the driver
    /// has no XDP. Never leaves one hook attached without the other.
    fn create_links(&mut self, ifname: &str, ifindex: u32) -> Result<FreshLinks, DataplaneError> {
        let xdp_prog = self.xdp_mut()?;
        let xdp = match xdp_prog.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(link) => link,
            Err(_) => xdp_prog
                .attach_to_if_index(ifindex, XdpMode::Skb)
                .map_err(|source| DataplaneError::Program {
                    name: PROG_XDP_EGRESS,
                    action: "attach",
                    source,
                })?,
        };
        let tc = match self.tc_mut()?.attach_with_options(
            ifname,
            TcAttachType::Egress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        ) {
            Ok(link) => link,
            Err(source) => {
                let _ = self.xdp_mut()?.detach(xdp);
                return Err(DataplaneError::Program {
                    name: PROG_TC_INGRESS,
                    action: "attach",
                    source,
                });
            }
        };
        Ok(FreshLinks { ifindex, xdp, tc })
    }

    /// Pins fresh links (with a pin directory) or keeps them owned. Both
    /// links are pinned or neither: on any failure the pins made so far are
    /// removed and both links dropped, which detaches them.
    fn keep_links(&mut self, fresh: FreshLinks) -> Result<(), DataplaneError> {
        let FreshLinks { ifindex, xdp, tc } = fresh;
        let Some((xdp_path, tc_path)) = self.link_paths(ifindex) else {
            self.owned_links.insert(ifindex, OwnedLinks { xdp, tc });
            return Ok(());
        };
        let take_err = |name, source| DataplaneError::Program {
            name,
            action: "take link",
            source,
        };
        // Once taken, a link lives as long as its FdLink (or its pin).
        let xdp_fd = self
            .xdp_mut()?
            .take_link(xdp)
            .map_err(|e| take_err(PROG_XDP_EGRESS, e));
        let tc_fd = self
            .tc_mut()?
            .take_link(tc)
            .map_err(|e| take_err(PROG_TC_INGRESS, e));
        let (xdp_fd, tc_fd): (FdLink, FdLink) = match (xdp_fd, tc_fd) {
            (Ok(x), Ok(t)) => (
                x.try_into().map_err(|source| DataplaneError::Link {
                    path: xdp_path.clone(),
                    source,
                })?,
                t.try_into().map_err(|source| DataplaneError::Link {
                    path: tc_path.clone(),
                    source,
                })?,
            ),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        xdp_fd
            .pin(&xdp_path)
            .map_err(|source| DataplaneError::Pin {
                path: xdp_path.clone(),
                source,
            })?;
        if let Err(source) = tc_fd.pin(&tc_path) {
            // The XDP pin would keep its hook alone: remove it, and the
            // links detach when xdp_fd and tc_fd drop here.
            remove_pins(&[&xdp_path]);
            return Err(DataplaneError::Pin {
                path: tc_path,
                source,
            });
        }
        Ok(())
    }

    /// Points pinned links of a previous process at our programs. `false`
    /// when there is nothing usable pinned for `ifindex` (stale pins of a
    /// vanished interface, or half a pair, are removed).
    fn adopt_links(&mut self, ifindex: u32) -> Result<bool, DataplaneError> {
        let Some((xdp_path, tc_path)) = self.link_paths(ifindex) else {
            return Ok(false);
        };
        if !xdp_path.is_file() || !tc_path.is_file() {
            remove_pins(&[&xdp_path, &tc_path]);
            return Ok(false);
        }
        let open = |path: &Path| {
            PinnedLink::from_pin(path).map_err(|source| DataplaneError::Link {
                path: path.to_owned(),
                source,
            })
        };
        let xdp_link: aya::programs::xdp::XdpLink = FdLink::from(open(&xdp_path)?)
            .try_into()
            .map_err(|source| DataplaneError::Link {
                path: xdp_path.clone(),
                source,
            })?;
        let tc_link: SchedClassifierLink =
            FdLink::from(open(&tc_path)?)
                .try_into()
                .map_err(|source| DataplaneError::Link {
                    path: tc_path.clone(),
                    source,
                })?;
        // A link whose interface is gone refuses the update: start afresh.
        let xdp_ok = self.xdp_mut()?.attach_to_link(xdp_link).is_ok();
        let tc_ok = self.tc_mut()?.attach_to_link(tc_link).is_ok();
        if !(xdp_ok && tc_ok) {
            remove_pins(&[&xdp_path, &tc_path]);
            return Ok(false);
        }
        Ok(true)
    }

    /// Detaches both hooks from `ifindex` and removes its pins. Its
    /// `sg_ifaces` entry stays until the next [`apply`](Self::apply)
    /// without it.
    pub fn detach(&mut self, ifindex: u32) -> Result<(), DataplaneError> {
        if let Some(links) = self.owned_links.remove(&ifindex) {
            let detach_err = |name| {
                move |source| DataplaneError::Program {
                    name,
                    action: "detach",
                    source,
                }
            };
            self.xdp_mut()?
                .detach(links.xdp)
                .map_err(detach_err(PROG_XDP_EGRESS))?;
            self.tc_mut()?
                .detach(links.tc)
                .map_err(detach_err(PROG_TC_INGRESS))?;
        }
        if let Some((xdp_path, tc_path)) = self.link_paths(ifindex) {
            remove_pins(&[&xdp_path, &tc_path]);
        }
        Ok(())
    }

    /// Ifindexes with pinned links in the pin directory.
    pub fn pinned_interfaces(&self) -> Vec<u32> {
        let Some(dir) = self.pin_dir.as_ref().map(|d| d.join("links")) else {
            return Vec::new();
        };
        let mut found: Vec<u32> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix("_xdp")?.parse().ok())
            .collect();
        found.sort_unstable();
        found
    }
}

/// The hooks of `ifindex` as the kernel reports them right after
/// attaching or adopting.
pub(super) fn attach_info(
    ifindex: u32,
    netns: Option<&Path>,
    adopted: bool,
) -> Result<AttachInfo, DataplaneError> {
    let query = || linkinfo::xdp_mode(ifindex);
    let mode = match netns {
        Some(path) => netns::run_in(path, query)?,
        None => query(),
    }
    .map_err(|source| DataplaneError::Io {
        action: "asking the kernel for the XDP mode of",
        path: PathBuf::from(format!("interface {ifindex}")),
        source,
    })?;
    // Attached a moment ago: no mode means someone detached it since.
    let xdp_mode = mode.ok_or_else(|| DataplaneError::UnknownInterface {
        name: format!("#{ifindex} (its XDP program vanished right after attaching)"),
    })?;
    Ok(AttachInfo {
        ifindex,
        xdp_mode,
        adopted,
    })
}

pub(crate) fn remove_pins(paths: &[&Path]) {
    for path in paths {
        // Detached first: unpinning alone would leave the hook on until
        // the kernel frees the pin's inode (after an RCU grace period, from
        // a work queue), and a caller undoing half a pair must find neither
        // hook when it returns. A pin that is not a live link just goes.
        if let Ok(link) = crate::sys::obj_get(path) {
            let _ = crate::sys::link_detach(link.as_fd());
        }
        let _ = std::fs::remove_file(path);
    }
}
