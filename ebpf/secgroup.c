/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The secgroup data plane: one object with both programs and every map.
 *
 *   sg_xdp_egress  (xdp_egress.c)  what a VM sends: its egress rules
 *   sg_tc_ingress  (tc_ingress.c)  what is sent to a VM: its ingress rules
 *
 * All logic lives in header-only modules under lib/ (see README.md), and
 * the object is one translation unit: static helpers inline, and a few
 * global subprograms (SG_SUBPROG) keep verification small.
 */
#include "xdp_egress.c"
#include "tc_ingress.c"
#include "lib/btf.h"

/* GPL-compatible: bpf_ktime_get_boot_ns() and others are GPL-only. */
char _license[] SEC("license") = "Dual BSD/GPL";
