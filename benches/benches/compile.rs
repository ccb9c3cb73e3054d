//! Criterion benchmarks of the control plane's compile path: rule-file
//! bytes to classifier tables (`secgroup_model::load` +
//! `secgroup_policy::compile` + `secgroup_classifier::build` of every
//! list) for 1k, 10k and 100k effective rules. `cargo bench -p
//! secgroup-bench`; `cargo xtask bench` measures the same in-process for
//! its table, split by stage.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use secgroup_bench::control::build_all;
use secgroup_bench::rules::{self, Corpus};

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("rules-to-tables");
    // 100k rules take about a second an iteration: criterion's minimum of
    // ten samples is plenty.
    group.sample_size(10);
    for size in [1_000, 10_000, 100_000] {
        let files = Corpus::for_compile(size).files();
        group.bench_with_input(BenchmarkId::from_parameter(size), &files, |b, files| {
            b.iter(|| {
                let policy = rules::compile(files).unwrap_or_else(|e| panic!("{e:#}"));
                build_all(&policy).unwrap_or_else(|e| panic!("{e:#}"))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, compile);
criterion_main!(benches);
