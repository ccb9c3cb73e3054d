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

/*
 * The 64-bit word whose bytes in memory are @first's, then @second's.
 *
 * Map keys are written with the widest stores their layout allows: the
 * kernel hashes and compares keys (jhash, memcmp, the LPM trie's
 * longest_prefix_match) reading 4 or 8 bytes at a time, and a load that
 * spans several narrower stores still in flight cannot be forwarded from
 * them: it waits until they retire, which on the test VM cost more than
 * the hash itself. The stack only takes naturally aligned stores, hence
 * keys declared SG_KEY_ALIGNED (and, for the LPM keys, placed so that
 * their data rather than their prefix length is 8-byte aligned).
 */
static __always_inline __u64 sg_u64_of(__u32 first, __u32 second)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (__u64)second << 32 | first;
#else
	return (__u64)first << 32 | second;
#endif
}

#define SG_KEY_ALIGNED __attribute__((aligned(8)))

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
