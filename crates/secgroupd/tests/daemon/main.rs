//! The real secgroupd binary against real interfaces and real traffic,
//! inside network namespaces each test creates and removes. Root only; see
//! `secgroup_testbed::root_or_skip`.

mod harness;

mod api;
mod counters;
mod etcd;
mod events;
mod faults;
mod guard;
mod links;
mod metrics;
mod portsec;
mod reload;
mod restart;
mod startup;
mod trace;
