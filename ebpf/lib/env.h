/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the policy stages share about the packet being decided, looked up
 * once per packet by the pipeline (pipeline.h).
 */
#ifndef SG_ENV_H
#define SG_ENV_H

#include "common.h"

struct sg_env {
	const struct sg_iface *iface;
	const struct sg_config *cfg;
	__u64 now;        /* sg_now(), read once per packet */
	__u32 ifindex;    /* the conntrack zone */
	__u32 len;        /* packet bytes, for counters */
	__u8 dir;         /* enum sg_direction: a constant per program */
};

#endif /* SG_ENV_H */
