//! `scanpay reconcile`: one day reconciled at once, with the same settings,
//! gateway and database as `serve`.

use super::gateway::{build_gateway, running_server};
use crate::checkout::reconcile::DayOutcome;
use crate::checkout::{Checkout, Hub};
use crate::config::Settings;

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
