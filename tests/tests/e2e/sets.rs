//! Built-in templates, address sets and service sets, enforced.

use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    CLIENT_A, CLIENT_A6, CLIENT_B, CLIENT_C, Endpoint, RuleFile, TestBed, accept, ping,
    root_or_skip, secgroupctl_binary, service, tcp, udp,
};

use crate::start;

#[test]
fn open_major_ports_template_opens_ssh_web_rdp_and_ping_and_nothing_else() {
    if !root_or_skip("open_major_ports_template_opens_ssh_web_rdp_and_ping_and_nothing_else") {
        return;
    }
    let bed = TestBed::new("tmpl");
    let vm = bed.vm("omp", 33);
    // The template as the operator would save it.
    let out = std::process::Command::new(secgroupctl_binary())
        .args(["template", "show", "open-major-ports", "--id", "sg-omp"])
        .output()
        .unwrap_or_else(|e| panic!("running secgroupctl template show: {e}"));
    assert!(
        out.status.success(),
        "secgroupctl template show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bed.host
        .rules
        .write("template.json", &String::from_utf8_lossy(&out.stdout));
    let binding = RuleFile::new().instance(&vm, &["sg-omp"]);
    let (_daemon, control) = start(&bed, &binding, &[vm.instance()]);
    let me = Endpoint::new(&vm.ns, &vm.ip4);
    let me6 = Endpoint::new(&vm.ns, &vm.ip6);
    let a = Endpoint::new(&bed.world, CLIENT_A);
    let a6 = Endpoint::new(&bed.world, CLIENT_A6);
    control.expect_all(&[
        (tcp(a, me, 22), Accepted, "open-major-ports: SSH"),
        (tcp(a, me, 80), Accepted, "open-major-ports: HTTP"),
        (tcp(a, me, 443), Accepted, "open-major-ports: HTTPS"),
        (tcp(a, me, 3389), Accepted, "open-major-ports: RDP"),
        (
            tcp(a6, me6, 443),
            Accepted,
            "open-major-ports: HTTPS from anywhere, IPv6 too",
        ),
        (
            ping(a, me),
            Accepted,
            "open-major-ports: icmp from 0.0.0.0/0",
        ),
        (
            ping(a6, me6),
            Accepted,
            "open-major-ports: icmpv6 from ::/0",
        ),
        (tcp(a, me, 8080), Blocked, "not a major port: default drop"),
        (
            udp(a, me, 53),
            Blocked,
            "no UDP from public addresses: default drop",
        ),
        (tcp(me, a, 8080), Accepted, "open-major-ports: all outbound"),
    ]);
}

#[test]
fn address_sets_and_service_sets_select_remotes_and_services() {
    if !root_or_skip("address_sets_and_service_sets_select_remotes_and_services") {
        return;
    }
    let bed = TestBed::new("sets");
    let vm = bed.vm("sets", 34);
    let rules = RuleFile::new()
        .address_set("ipm-clients", &[CLIENT_A, "203.0.113.12-203.0.113.13"])
        .service_set("ppm-app", &["tcp:8080", "udp:5353"])
        .group(
            "sg-sets",
            vec![service("accept", "ppm-app", "ipm-clients")],
            vec![accept("all", "", "")],
        )
        .instance(&vm, &["sg-sets"]);
    let (_daemon, control) = start(&bed, &rules, &[vm.instance()]);
    let me = Endpoint::new(&vm.ns, &vm.ip4);
    let from = |ip| Endpoint::new(&bed.world, ip);
    control.expect_all(&[
        (
            tcp(from(CLIENT_A), me, 8080),
            Accepted,
            "ppm-app tcp:8080 from ipm-clients (an address)",
        ),
        (
            udp(from(CLIENT_A), me, 5353),
            Accepted,
            "ppm-app udp:5353 from ipm-clients",
        ),
        (
            tcp(from(CLIENT_C), me, 8080),
            Accepted,
            "ipm-clients' range holds ClientC",
        ),
        (
            tcp(from(CLIENT_B), me, 8080),
            Blocked,
            "ClientB is not in ipm-clients",
        ),
        (
            tcp(from(CLIENT_A), me, 8081),
            Blocked,
            "8081 is not in ppm-app",
        ),
        (
            udp(from(CLIENT_A), me, 8080),
            Blocked,
            "ppm-app has tcp:8080, not udp",
        ),
    ]);
}
