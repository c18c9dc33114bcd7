//! `scanpay reconcile`: one day reconciled at once, with the same settings,
//! gateway and database as `serve`.

use super::gateway::{build_gateway, running_server};
use jiff::civil::Date;

use crate::checkout::reconcile::DayOutcome;
use crate::checkout::{Checkout, Hub};
use crate::config::Settings;
use crate::values::books::{DayState, DifferenceKind};
use crate::values::money::millifen_to_fen;

/// `scanpay reconcile --date DAY`: the same settings as `serve`, the same
/// gateway (in simulator mode, the simulator of the server running at
/// `listen`), the same database; one day reconciled at once.
pub async fn reconcile(settings: Settings, day: jiff::civil::Date) -> anyhow::Result<DayOutcome> {
    // Reconciling never starts a database: a mistyped --data-dir is an error.
    let dir = settings.data_dir.clone();
    let store =
        tokio::task::spawn_blocking(move || crate::store::Store::open_existing(&dir)).await??;
    let addr = running_server(&settings.listen)?;
    // One day's run needs no certificate refresh: the certificates fetched now serve it.
    let (gateway, _) = build_gateway(&settings, addr).await?;
    let checkout = Checkout::new(store, gateway, Hub::new(), settings.checkout_config());
    Ok(checkout.reconcile_day(day).await?)
}

/// The one line `scanpay reconcile` prints.
pub fn summary_line(outcome: &DayOutcome, day: Date) -> String {
    match outcome {
        DayOutcome::Pending(why) => format!("{day}: not checked: {why}"),
        DayOutcome::Checked {
            day: row,
            differences,
            recovered,
        } => {
            let figures = format!(
                "bill: {} payments {} yuan, refunds {} yuan, fees {} yuan, net {} yuan",
                row.payments,
                row.gross.yuan_string(),
                row.refunded.yuan_string(),
                millifen_to_fen(row.fee_millifen).yuan_string(),
                row.net.yuan_string()
            );
            match row.state {
                DayState::Matched => format!("{day}: matched; {figures}"),
                DayState::NoBill => format!("{day}: no bill (no trade that day, none here)"),
                DayState::Pending => format!("{day}: not checked"),
                DayState::Differences => {
                    let mut kinds: Vec<(DifferenceKind, usize)> = Vec::new();
                    for d in differences {
                        match kinds.iter_mut().find(|(k, _)| *k == d.difference.kind) {
                            Some((_, n)) => *n += 1,
                            None => kinds.push((d.difference.kind, 1)),
                        }
                    }
                    let kinds: Vec<String> =
                        kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
                    let recovered = match recovered {
                        0 => String::new(),
                        n => format!(" ({n} payment(s) found only in the bill recorded now)"),
                    };
                    format!(
                        "{day}: {} difference(s): {}{recovered}; {figures}",
                        differences.len(),
                        kinds.join(", ")
                    )
                }
            }
        }
    }
}

/// 0 when everything matches (or there was nothing to match), 3 when there
/// are differences, 1 when the day could not be checked.
pub fn exit_code(outcome: &DayOutcome) -> u8 {
    match outcome {
        DayOutcome::Pending(_) => 1,
        DayOutcome::Checked { day, .. } => match day.state {
            DayState::Matched | DayState::NoBill => 0,
            DayState::Differences => 3,
            DayState::Pending => 1,
        },
    }
}
