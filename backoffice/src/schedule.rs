//! An official's working pattern and the municipality's holidays, read from the store into the
//! domain's types: the one place where calendar rows become rules.

use std::collections::BTreeMap;

use jiff::civil::Date;
use sportello_domain::{PatronDay, WorkingPattern, pattern_from_json, pattern_from_offices_hours};
use sportello_store::{Store, StoreError, User};

use crate::context::BackOfficeError;
use crate::convert;
use crate::settings::SETTING_PATRON_DAY;

/// The pattern an official works to: their own, else whenever one of their offices is open;
/// `None` with neither (or when unusable, which is logged).
pub async fn working_pattern(store: &Store, user: &User) -> Result<Option<WorkingPattern>, StoreError> {
    let parsed = match &user.pattern {
        Some(json) => pattern_from_json(json),
        // Whenever one of the official's offices is open: each office's bookings offer its own
        // hours (`booking::offer`), which lie inside this week.
        None => {
            let offices = store.offices_of_user(&user.id).await?;
            if offices.is_empty() {
                return Ok(None);
            }
            let hours: Vec<&str> = offices.iter().map(|o| o.opening_hours.as_str()).collect();
            pattern_from_offices_hours(&hours)
        }
    };
    Ok(parsed.map_err(|error| tracing::warn!(user = %user.id, %error, "unusable working pattern")).ok())
}

/// The patron saint's day from the settings (a local holiday), if set.
pub async fn patron_day(store: &Store) -> Result<Option<PatronDay>, StoreError> {
    Ok(store.setting(SETTING_PATRON_DAY).await?.as_deref().and_then(convert::patron_day))
}

/// Holidays (national + the patron's day from the settings) of the years, with their names.
pub async fn holiday_names(
    store: &Store,
    first_year: i16,
    last_year: i16,
) -> Result<BTreeMap<Date, &'static str>, BackOfficeError> {
    let patron = patron_day(store).await?;
    let mut out = BTreeMap::new();
    for year in first_year..=last_year {
        for h in sportello_domain::holidays::holidays(year, patron)? {
            out.insert(h.date, h.name);
        }
    }
    Ok(out)
}
