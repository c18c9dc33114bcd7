//! The revenue chart's geometry: bars in SVG units, drawn by the template.

use crate::store::reports::Period;
use crate::values::money::Fen;
use crate::values::shop_time::Granularity;

/// The chart's drawing height in SVG units.
const CHART_HEIGHT: i64 = 100;
/// Horizontal SVG units per bar, gap included.
const BAR_SLOT: i64 = 10;

/// One bar of the revenue chart, in SVG units (origin top left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bar {
    pub(super) x: i64,
    pub(super) y: i64,
    pub(super) height: i64,
    pub(super) label: String,
    pub(super) count: i64,
    pub(super) sum: Fen,
}

/// The revenue chart: bars scaled to the highest period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Chart {
    pub(super) bars: Vec<Bar>,
    pub(super) width: i64,
    pub(super) height: i64,
    pub(super) max: Fen,
    pub(super) monthly: bool,
}

impl Chart {
    pub(super) fn new(periods: &[Period], granularity: Granularity) -> Chart {
        let max = periods.iter().map(|p| p.sum).max().unwrap_or(Fen::ZERO);
        let bars = periods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // Any sale shows at least a sliver; the tallest fills the chart.
                let height = if max.get() > 0 && p.sum.get() > 0 {
                    let max = i128::from(max.get());
                    let h = (i128::from(p.sum.get()) * i128::from(CHART_HEIGHT) + max - 1) / max;
                    i64::try_from(h).unwrap_or(CHART_HEIGHT).max(1)
                } else {
                    0
                };
                Bar {
                    x: i64::try_from(i).unwrap_or(0) * BAR_SLOT,
                    y: CHART_HEIGHT - height,
                    height,
                    label: match granularity {
                        Granularity::Day => p.first_day.to_string(),
                        Granularity::Month => p.first_day.strftime("%Y-%m").to_string(),
                    },
                    count: p.count,
                    sum: p.sum,
                }
            })
            .collect::<Vec<_>>();
        Chart {
            width: (i64::try_from(bars.len()).unwrap_or(0) * BAR_SLOT).max(BAR_SLOT),
            height: CHART_HEIGHT,
            bars,
            max,
            monthly: granularity == Granularity::Month,
        }
    }

    pub(super) fn first_label(&self) -> &str {
        self.bars.first().map(|b| b.label.as_str()).unwrap_or("")
    }

    pub(super) fn last_label(&self) -> &str {
        self.bars.last().map(|b| b.label.as_str()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn the_chart_scales_bars_to_the_best_period() {
        let p = |d: i8, fen: i64| Period {
            first_day: date(2024, 6, d),
            count: i64::from(fen > 0),
            sum: Fen::new(fen),
        };
        let chart = Chart::new(
            &[p(1, 1250), p(2, 0), p(3, 1), p(4, 2500)],
            Granularity::Day,
        );
        let heights: Vec<i64> = chart.bars.iter().map(|b| b.height).collect();
        assert_eq!(heights, vec![50, 0, 1, 100]);
        assert_eq!(chart.bars[3].x, 30);
        assert_eq!(chart.bars[3].y, 0);
        assert_eq!(chart.width, 40);
        assert_eq!(chart.max, Fen::new(2500));
        assert_eq!(
            (chart.first_label(), chart.last_label()),
            ("2024-06-01", "2024-06-04")
        );

        let empty = Chart::new(&[p(1, 0)], Granularity::Month);
        assert_eq!(empty.bars[0].height, 0);
        assert_eq!(empty.bars[0].label, "2024-06");
    }
}
