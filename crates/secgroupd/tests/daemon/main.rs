//! The real secgroupd binary against real interfaces and real traffic,
//! inside network namespaces each test creates and removes. Root only; see
//! `harness::kernel_tests_enabled`.

mod harness;

mod api;
mod links;
mod reload;
mod restart;
mod startup;
