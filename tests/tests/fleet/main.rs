//! A fleet of simulated hypervisors (`secgroup_testbed::Fleet`): host
//! namespaces whose bridges an underlay joins, each with its VMs and its
//! own secgroupd, and one etcd on a management network. Root only:
//! without it every test skips loudly, under CI=true it fails.

mod etcd;
mod lab;
mod publish;

use secgroup_testbed::Vm;

/// The rule file the lab's rules-directory daemons read.
pub const RULES: &str = "fleet.json";

/// `vm`'s IPv4 address as a traffic endpoint.
pub fn v4<'a>(vm: &'a Vm<'_>) -> secgroup_testbed::Endpoint<'a> {
    secgroup_testbed::Endpoint::new(&vm.ns, &vm.ip4)
}
