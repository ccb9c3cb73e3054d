/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Puts the ABI enums (and the event record) into the object's BTF.
 *
 * Userspace (crates/secgroup-dataplane/src/abi.rs) checks its copies of
 * these enums against the object's BTF. Clang emits BTF only for types the
 * object uses as types; the ABI stores these values in __u8 fields, so the
 * enums would be missing. This function names each of them in its
 * prototype, which is enough. It is never called, so never loaded: loaders
 * load only the subprograms a program calls.
 */
#ifndef SG_BTF_H
#define SG_BTF_H

#include "common.h"

SG_SUBPROG int sg_btf_abi_enums(enum sg_direction dir, enum sg_action action,
				enum sg_reason reason, enum sg_ct_state state,
				enum sg_ct_timeout timeout)
{
	return dir + action + reason + state + timeout;
}

/* A second one: BPF functions take at most five arguments. */
SG_SUBPROG int sg_btf_abi_enums2(enum sg_abi abi, enum sg_event_verdict verdict,
				 enum sg_event_limits limits)
{
	return abi + verdict + limits;
}

/* The ring buffer's record type: the map definition names no value type
 * (ring buffers have none), so nothing else puts it in the BTF. */
SG_SUBPROG int sg_btf_abi_event(const struct sg_event *event)
{
	return event ? event->reason : 0;
}

#endif /* SG_BTF_H */
