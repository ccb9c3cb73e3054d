//! The SVG plot: per-packet cost against rule count (left) and new-flow
//! throughput against rule count (right), secgroup against its
//! baselines (the do-nothing floor; no filter and nftables).

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::record::Results;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 560;

const BLUE_: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN_: RGBColor = RGBColor(44, 160, 44);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
const RED_: RGBColor = RGBColor(214, 39, 40);
const GREY: RGBColor = RGBColor(110, 110, 110);

pub fn svg(r: &Results, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (left, right) = root.split_horizontally(WIDTH / 2);
    per_packet(&left, r)?;
    throughput(&right, r)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

fn points(r: &Results, scenario: &str, variant: &str, metric: &str, scale: f64) -> Vec<(f64, f64)> {
    r.rule_counts(scenario, variant)
        .into_iter()
        .filter_map(|n| Some((n as f64, r.get(scenario, variant, n, metric)? * scale)))
        .collect()
}

/// Draws one line with dots and a legend entry; `dashed` for the second
/// hook or payload of a pair.
fn line<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<LogCoord<f64>, RangedCoordf64>>,
    data: Vec<(f64, f64)>,
    color: RGBColor,
    dashed: bool,
    label: &str,
) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let style = color.stroke_width(2);
    let series = if dashed {
        chart.draw_series(DashedLineSeries::new(data.clone(), 7, 4, style))
    } else {
        chart.draw_series(LineSeries::new(data.clone(), style))
    }
    .map_err(plot_err)?;
    series.label(label).legend(move |(x, y)| {
        if dashed {
            PathElement::new(vec![(x, y), (x + 7, y)], style)
        } else {
            PathElement::new(vec![(x, y), (x + 18, y)], style)
        }
    });
    chart
        .draw_series(data.into_iter().map(|p| Circle::new(p, 3, color.filled())))
        .map_err(plot_err)?;
    Ok(())
}

/// The top of the y axis: headroom above the data for the legend.
fn upper(data: &[Vec<(f64, f64)>], headroom: f64) -> f64 {
    data.iter().flatten().map(|p| p.1).fold(0.0, f64::max) * headroom + 1.0
}

fn per_packet<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Results) -> Result<()> {
    let scenarios = [
        ("new-flow-last-rule", BLUE_),
        ("new-flow-default-drop", ORANGE),
        ("established", GREEN_),
        ("sg-reference-10k", PURPLE),
    ];
    let mut lines = Vec::new();
    for (scenario, color) in scenarios {
        for (variant, hook, dashed) in [("secgroup-xdp", "XDP", false), ("secgroup-tc", "TC", true)]
        {
            lines.push((
                points(r, scenario, variant, "ns-per-packet", 1.0),
                color,
                dashed,
                format!("{scenario}, {hook}"),
            ));
        }
    }
    let max_rules = lines
        .iter()
        .flat_map(|l| &l.0)
        .map(|p| p.0)
        .fold(1.0, f64::max);
    let floors: Vec<(f64, bool, &str)> = [
        ("floor-xdp", false, "floor, XDP"),
        ("floor-tc", true, "floor, TC"),
    ]
    .into_iter()
    .filter_map(|(variant, dashed, label)| {
        Some((r.get("floor", variant, 0, "ns-per-packet")?, dashed, label))
    })
    .collect();
    let all: Vec<Vec<(f64, f64)>> = lines.iter().map(|l| l.0.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Per-packet cost in the kernel (BPF_PROG_TEST_RUN)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((0.8..max_rules * 1.25).log_scale(), 0.0..upper(&all, 1.7))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("rules per direction")
        .y_desc("ns per packet")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(plot_err)?;
    for (data, color, dashed, label) in lines {
        line(&mut chart, data, color, dashed, &label)?;
    }
    for (floor, dashed, label) in floors {
        line(
            &mut chart,
            vec![(1.0, floor), (max_rules, floor)],
            GREY,
            dashed,
            label,
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

fn throughput<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Results) -> Result<()> {
    let mut lines = Vec::new();
    for (payload, dashed) in [(64, false), (1400, true)] {
        let scenario = format!("throughput-new-flows-{payload}B");
        for (variant, color) in [("secgroup", BLUE_), ("nftables", RED_)] {
            let data = points(r, &scenario, variant, "rx-pps", 1e-3);
            lines.push((data, color, dashed, format!("{variant}, {payload} B")));
        }
    }
    let max_rules = lines
        .iter()
        .flat_map(|l| &l.0)
        .map(|p| p.0)
        .fold(10.0, f64::max);
    for (payload, dashed) in [(64, false), (1400, true)] {
        let scenario = format!("throughput-new-flows-{payload}B");
        if let Some(none) = r.get(&scenario, "none", 0, "rx-pps") {
            let data = vec![(1.0, none * 1e-3), (max_rules, none * 1e-3)];
            lines.push((data, GREY, dashed, format!("no filter, {payload} B")));
        }
        if let Some(pass) = r.get(&scenario, "xdp-pass", 0, "rx-pps") {
            let data = vec![(1.0, pass * 1e-3), (max_rules, pass * 1e-3)];
            lines.push((
                data,
                GREEN_,
                dashed,
                format!("XDP_PASS on the taps, {payload} B"),
            ));
        }
    }
    let all: Vec<Vec<(f64, f64)>> = lines.iter().map(|l| l.0.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            "New-flow UDP throughput through the bridge",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((0.8..max_rules * 1.25).log_scale(), 0.0..upper(&all, 1.25))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("rules per direction")
        .y_desc("thousand datagrams per second received")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(plot_err)?;
    for (data, color, dashed, label) in lines {
        line(&mut chart, data, color, dashed, &label)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(plot_err)?;
    Ok(())
}
