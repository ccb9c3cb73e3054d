/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every file of the data plane includes: kernel UAPI types, the libbpf
 * helper declarations, the ABI and a few constants the UAPI headers of older
 * kernels lack.
 *
 * Only headers that need no libc are used (linux/icmp.h pulls in
 * <sys/socket.h>, so the few ICMP definitions needed live in proto.h).
 */
#ifndef SG_COMMON_H
#define SG_COMMON_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi.h"

/*
 * A global BPF subprogram: not inlined, and verified once on its own with
 * unknown arguments instead of once per path that reaches each call. Used
 * at the few seams where path counts would otherwise multiply (parsing,
 * policy, classification), which keeps verification fast. Pointer
 * arguments must be NULL-checked: the verifier assumes nothing about them
 * beyond the size of their type.
 */
#define SG_SUBPROG __attribute__((noinline))

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Address families as stored in sg_ct_key.family and sg_frag_key.family. */
#define SG_AF_INET  2
#define SG_AF_INET6 10

/*
 * TCX return codes (enum tcx_action_base, Linux 6.6). TCX_NEXT hands the
 * packet to the next program of the chain, or lets it go on when there is
 * none; for a legacy cls_bpf attachment in direct-action mode the same -1
 * is TC_ACT_UNSPEC, which also means "continue".
 */
#define SG_TCX_NEXT (-1)
#define SG_TCX_DROP 2

#endif /* SG_COMMON_H */
