//! The compiled eBPF object, embedded at build time by `build.rs`.

/// The ELF object holding both programs and every map. Aligned because aya
/// reads it in place.
pub static BYTES: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/secgroup.bpf.o"));

/// Program on a VM interface's receive path (what the VM sends): the VM's
/// egress rules.
pub const PROG_XDP_EGRESS: &str = "sg_xdp_egress";
/// Program on a VM interface's transmit path, attached with TCX (what goes
/// to the VM): the VM's ingress rules.
pub const PROG_TC_INGRESS: &str = "sg_tc_ingress";
