//! The drift detector: every mirrored struct must have the size and
//! field offsets that clang gave its C twin, read from the object's BTF.
use super::*;
use crate::btf::StructLayouts;
use std::mem::offset_of;

fn check(layouts: &StructLayouts, c_name: &str, size: usize, fields: &[(&str, usize)]) {
    let c = layouts
        .get(c_name)
        .unwrap_or_else(|| panic!("struct {c_name} is not in the object's BTF"));
    assert_eq!(
        c.size, size,
        "size of struct {c_name}: C says {}, Rust says {size}",
        c.size
    );
    assert_eq!(
        c.members.len(),
        fields.len(),
        "struct {c_name} has members {:?} in C; the Rust mirror lists {fields:?}",
        c.members
    );
    for (name, offset) in fields {
        let c_offset = c
            .members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| *o)
            .unwrap_or_else(|| panic!("struct {c_name} has no member {name} in C"));
        assert_eq!(
            c_offset, *offset,
            "offset of {c_name}.{name}: C says {c_offset}, Rust says {offset}"
        );
    }
}

macro_rules! fields {
    ($ty:ty; $($c:ident => $rust:ident),* $(,)?) => {
        &[$((stringify!($c), offset_of!($ty, $rust))),*]
    };
}

#[test]
fn rust_mirrors_match_the_c_abi() {
    let layouts = StructLayouts::from_object(crate::object::BYTES)
        .unwrap_or_else(|e| panic!("reading BTF from the BPF object: {e}"));
    check(
        &layouts,
        "sg_ct_key",
        size_of::<CtKey>(),
        fields!(CtKey;
        ifindex => ifindex, family => family, proto => proto, pad => pad,
        local_port => local_port, remote_port => remote_port,
        local_addr => local_addr, remote_addr => remote_addr),
    );
    check(
        &layouts,
        "sg_ct4_key",
        size_of::<Ct4Key>(),
        fields!(Ct4Key;
        ifindex => ifindex, family => family, proto => proto, pad => pad,
        local_port => local_port, remote_port => remote_port,
        local_addr => local_addr, remote_addr => remote_addr),
    );
    check(
        &layouts,
        "sg_ct_entry",
        size_of::<CtEntry>(),
        fields!(CtEntry;
        created_ns => created_ns, expires_ns => expires_ns, packets => packets,
        bytes => bytes, table => table, rule_pos => rule_pos, origin_dir => origin_dir,
        state => state, flags => flags, pad => pad),
    );
    check(
        &layouts,
        "sg_frag_key",
        size_of::<FragKey>(),
        fields!(FragKey;
        ifindex => ifindex, id => id, family => family, proto => proto, dir => dir,
        pad => pad, src => src, dst => dst),
    );
    check(
        &layouts,
        "sg_frag_entry",
        size_of::<FragEntry>(),
        fields!(FragEntry; expires_ns => expires_ns),
    );
    // LPM keys: the Rust side holds the data part, aya adds the u32 prefixlen.
    check(
        &layouts,
        "sg_v4_key",
        4 + size_of::<V4KeyData>(),
        &[
            ("prefixlen", 0),
            ("table", 4 + offset_of!(V4KeyData, table)),
            ("addr", 4 + offset_of!(V4KeyData, addr)),
        ],
    );
    check(
        &layouts,
        "sg_v6_key",
        4 + size_of::<V6KeyData>(),
        &[
            ("prefixlen", 0),
            ("table", 4 + offset_of!(V6KeyData, table)),
            ("addr", 4 + offset_of!(V6KeyData, addr)),
        ],
    );
    // Host keys: the LPM keys' data alone, so the same Rust types.
    check(
        &layouts,
        "sg_v4_host_key",
        size_of::<V4KeyData>(),
        fields!(V4KeyData; table => table, addr => addr),
    );
    check(
        &layouts,
        "sg_v6_host_key",
        size_of::<V6KeyData>(),
        fields!(V6KeyData; table => table, addr => addr),
    );
    check(
        &layouts,
        "sg_l4_key",
        4 + size_of::<L4KeyData>(),
        &[
            ("prefixlen", 0),
            ("table", 4 + offset_of!(L4KeyData, table)),
            ("proto", 4 + offset_of!(L4KeyData, proto)),
            ("port", 4 + offset_of!(L4KeyData, port)),
            ("pad", 4 + offset_of!(L4KeyData, pad)),
        ],
    );
    check(
        &layouts,
        "sg_class_ref",
        size_of::<ClassRef>(),
        fields!(ClassRef; class_id => class_id),
    );
    check(
        &layouts,
        "sg_class_key",
        size_of::<ClassKey>(),
        fields!(ClassKey; table => table, class_id => class_id),
    );
    check(
        &layouts,
        "sg_ruleset",
        size_of::<RuleSetBits>(),
        fields!(RuleSetBits; summary => summary, words => words),
    );
    check(
        &layouts,
        "sg_rule_key",
        size_of::<RuleKey>(),
        fields!(RuleKey; table => table, pos => pos),
    );
    check(
        &layouts,
        "sg_rule_meta",
        size_of::<RuleMeta>(),
        fields!(RuleMeta;
        rule_uid => rule_uid, action => action, flags => flags, pad => pad),
    );
    check(
        &layouts,
        "sg_iface",
        size_of::<Iface>(),
        fields!(Iface;
        table => table, flags => flags, instance_uid => instance_uid,
        psec_set => psec_set, slot => slot, mac => mac, pad => pad,
        own_v6 => own_v6, own_v4 => own_v4),
    );
    for (c_name, size, addr) in [
        (
            "sg_psec_v4_key",
            size_of::<PsecV4KeyData>(),
            offset_of!(PsecV4KeyData, addr),
        ),
        (
            "sg_psec_v6_key",
            size_of::<PsecV6KeyData>(),
            offset_of!(PsecV6KeyData, addr),
        ),
    ] {
        // The two keys share their head; the Rust side is the data part.
        check(
            &layouts,
            c_name,
            4 + size,
            &[
                ("prefixlen", 0),
                ("set", 4 + offset_of!(PsecV4KeyData, set)),
                ("any", 4 + offset_of!(PsecV4KeyData, any)),
                ("pad", 4 + offset_of!(PsecV4KeyData, pad)),
                ("mac", 4 + offset_of!(PsecV4KeyData, mac)),
                ("addr", 4 + addr),
            ],
        );
    }
    assert_eq!(
        (
            offset_of!(PsecV6KeyData, mac),
            offset_of!(PsecV6KeyData, any)
        ),
        (
            offset_of!(PsecV4KeyData, mac),
            offset_of!(PsecV4KeyData, any)
        ),
        "sg_psec_v6_key's head is sg_psec_v4_key's"
    );
    check(
        &layouts,
        "sg_psec_mac_key",
        size_of::<PsecMacKey>(),
        fields!(PsecMacKey; set => set, mac => mac, pad => pad),
    );
    check(
        &layouts,
        "sg_rule_counter_key",
        size_of::<RuleCounterKey>(),
        fields!(RuleCounterKey;
        ifindex => ifindex, rule_uid => rule_uid),
    );
    check(
        &layouts,
        "sg_rule_counter",
        size_of::<RuleCounter>(),
        fields!(RuleCounter;
        packets => packets, bytes => bytes, last_hit_ns => last_hit_ns),
    );
    check(
        &layouts,
        "sg_iface_stats_key",
        size_of::<IfaceStatsKey>(),
        fields!(IfaceStatsKey;
        ifindex => ifindex, dir => dir),
    );
    check(
        &layouts,
        "sg_iface_stats",
        size_of::<IfaceStats>(),
        fields!(IfaceStats;
        packets => packets, bytes => bytes),
    );
    check(
        &layouts,
        "sg_config",
        size_of::<Config>(),
        fields!(Config;
        ct_timeout_ns => ct_timeout_ns, clock_offset_ns => clock_offset_ns,
        event_rate => event_rate, event_burst => event_burst),
    );
    check(
        &layouts,
        "sg_meta",
        size_of::<Meta>(),
        fields!(Meta;
        abi_version => abi_version, pad => pad, next_table_id => next_table_id,
        generation => generation, owner_token => owner_token, owner_pid => owner_pid,
        owner_started_ms => owner_started_ms, owner_socket => owner_socket, pad2 => pad2),
    );
    check(
        &layouts,
        "sg_decision",
        size_of::<Decision>(),
        fields!(Decision;
        magic => magic, rule_pos => rule_pos, table => table, reason => reason,
        action => action, dir => dir, pad => pad),
    );
    check(
        &layouts,
        "sg_event",
        size_of::<Event>(),
        fields!(Event;
        time_ns => time_ns, ifindex => ifindex, instance_uid => instance_uid, table => table,
        rule_pos => rule_pos, rule_uid => rule_uid, suppressed => suppressed, dir => dir,
        verdict => verdict, reason => reason, family => family, proto => proto,
        icmp_type => icmp_type, icmp_code => icmp_code, pad => pad, sport => sport,
        dport => dport, src => src, dst => dst, pad2 => pad2),
    );
    check(
        &layouts,
        "sg_log_bucket",
        size_of::<LogBucket>(),
        fields!(LogBucket;
        tat_ns => tat_ns, emitted => emitted, suppressed => suppressed, lost => lost,
        pending => pending),
    );
}

#[test]
fn enum_values_match_the_c_abi() {
    let layouts = StructLayouts::from_object(crate::object::BYTES)
        .unwrap_or_else(|e| panic!("reading BTF from the BPF object: {e}"));
    let check_enum = |c_name: &str, rust: &[(&str, u8)], max: (&str, usize)| {
        let values = layouts
            .enum_values(c_name)
            .unwrap_or_else(|| panic!("enum {c_name} is not in the object's BTF"));
        for (name, value) in rust
            .iter()
            .map(|(n, v)| (*n, i64::from(*v)))
            .chain([(max.0, max.1 as i64)])
        {
            let c_value = values
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| panic!("enum {c_name} has no {name}"));
            assert_eq!(
                c_value, value,
                "{c_name}::{name}: C says {c_value}, Rust says {value}"
            );
        }
    };
    let reasons: Vec<(String, u8)> = Reason::ALL
        .iter()
        .map(|r| {
            (
                format!("SG_REASON_{}", r.as_str().replace('-', "_").to_uppercase()),
                *r as u8,
            )
        })
        .collect();
    let reasons: Vec<(&str, u8)> = reasons.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    check_enum("sg_reason", &reasons, ("SG_REASON_MAX", Reason::COUNT));
    let timeouts: Vec<(String, u8)> = CtTimeout::ALL
        .iter()
        .map(|t| {
            (
                format!(
                    "SG_CT_TIMEOUT_{}",
                    t.as_str().replace('-', "_").to_uppercase()
                ),
                *t as u8,
            )
        })
        .collect();
    let timeouts: Vec<(&str, u8)> = timeouts.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    check_enum(
        "sg_ct_timeout",
        &timeouts,
        ("SG_CT_TIMEOUT_MAX", CtTimeout::COUNT),
    );
    let states = [
        ("SG_CT_NEW", CtState::New),
        ("SG_CT_REPLIED", CtState::Replied),
        ("SG_CT_TCP_SYN_SENT", CtState::TcpSynSent),
        ("SG_CT_TCP_SYN_RECV", CtState::TcpSynRecv),
        ("SG_CT_TCP_ESTABLISHED", CtState::TcpEstablished),
        ("SG_CT_TCP_FIN_WAIT", CtState::TcpFinWait),
        ("SG_CT_TCP_CLOSING", CtState::TcpClosing),
        ("SG_CT_TCP_CLOSED", CtState::TcpClosed),
    ];
    let states: Vec<(&str, u8)> = states.iter().map(|(n, s)| (*n, *s as u8)).collect();
    check_enum("sg_ct_state", &states, ("SG_CT_STATE_MAX", CtState::COUNT));
    check_enum(
        "sg_direction",
        &[
            ("SG_DIR_INGRESS", DIR_INGRESS),
            ("SG_DIR_EGRESS", DIR_EGRESS),
        ],
        ("SG_DIR_MAX", DIR_MAX),
    );
    let abi = layouts
        .enum_values("sg_abi")
        .unwrap_or_else(|| panic!("enum sg_abi is not in the object's BTF"));
    for (name, value) in [
        ("SG_ABI_VERSION", i64::from(ABI_VERSION)),
        ("SG_META_SOCKET_LEN", META_SOCKET_LEN as i64),
        ("SG_L4_F_V4_HOSTS", i64::from(L4_F_V4_HOSTS)),
        ("SG_L4_F_V6_HOSTS", i64::from(L4_F_V6_HOSTS)),
        ("SG_CLASS_ID_MASK", i64::from(CLASS_ID_MASK)),
    ] {
        assert!(
            abi.iter().any(|(n, v)| n == name && *v == value),
            "sg_abi::{name}: C says {abi:?}, Rust says {value}"
        );
    }
    check_enum(
        "sg_event_verdict",
        &[
            ("SG_EVENT_ACCEPT", EventVerdict::Accept as u8),
            ("SG_EVENT_DROP", EventVerdict::Drop as u8),
            ("SG_EVENT_WOULD_DROP", EventVerdict::WouldDrop as u8),
        ],
        ("SG_EVENT_VERDICT_MAX", EventVerdict::COUNT),
    );
    let limits = layouts
        .enum_values("sg_event_limits")
        .unwrap_or_else(|| panic!("enum sg_event_limits is not in the object's BTF"));
    for (name, value) in [
        ("SG_EVENT_RATE_DEFAULT", i64::from(EVENT_RATE_DEFAULT)),
        ("SG_EVENT_BURST_DEFAULT", i64::from(EVENT_BURST_DEFAULT)),
    ] {
        assert!(
            limits.iter().any(|(n, v)| n == name && *v == value),
            "sg_event_limits::{name}: C says {limits:?}, Rust says {value}"
        );
    }
    check_enum(
        "sg_action",
        &[
            ("SG_ACTION_DROP", ACTION_DROP),
            ("SG_ACTION_ACCEPT", ACTION_ACCEPT),
        ],
        ("SG_ACTION_ACCEPT", 1),
    );
}
