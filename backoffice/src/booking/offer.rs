//! What an office can offer citizens for a service: the free slots of its active officials, from
//! their patterns (or the opening hours), absences, imported busy times, holidays, confirmed
//! appointments, notice and horizon — the one computation behind the citizens' booking (slots,
//! months, book, reschedule) and the staff's working-pattern preview, which asks the same question
//! with one official's pattern replaced by a proposed one.

use std::collections::{BTreeSet, HashMap};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use sportello_domain::{
    AvailabilityRequest, MeetingMode, Official, OfficialId, Slot, free_slots, holiday_dates, pattern_from_json,
    pattern_from_opening_hours,
};
use sportello_store::{Office, Service, StaffRole, Store, StoreError, User};

use crate::context::BackOfficeError;
use crate::convert::{interval, modes};
use crate::schedule::patron_day;
use crate::settings::{DEFAULT_HORIZON_DAYS, DEFAULT_MIN_NOTICE_MINUTES, SETTING_HORIZON, SETTING_MIN_NOTICE, parsed};
use crate::time::ts;

/// One official's working pattern as it would be: `Some(json)` a personal pattern, `None` the
/// office's opening hours.
pub struct PatternOverride<'a> {
    pub user_id: &'a str,
    pub pattern: Option<&'a str>,
}

/// What the office can offer now for a service, and who.
pub struct Offer {
    pub slots: Vec<Slot>,
    /// `OfficialId(i)` is `officials[i]`.
    pub officials: Vec<User>,
    /// Confirmed appointments per official (for fair assignment).
    pub load: HashMap<OfficialId, usize>,
}

impl Offer {
    pub fn slot_at(&self, start: Timestamp) -> Option<&Slot> {
        self.slots.iter().find(|s| s.start == start)
    }

    /// Candidates for `slot` in `mode`, least loaded first (ties: as `assign_fairly_for`).
    pub fn candidates(&self, slot: &Slot, mode: MeetingMode) -> Vec<&User> {
        let pool = match mode {
            MeetingMode::Video if slot.mode_options.video => &slot.officials,
            MeetingMode::InPerson if slot.mode_options.in_person => &slot.in_person,
            _ => return Vec::new(),
        };
        let mut ids = pool.clone();
        ids.sort_by_key(|id| (self.load.get(id).copied().unwrap_or(0), *id));
        ids.iter().filter_map(|id| self.officials.get(id.0 as usize)).collect()
    }
}

/// The booking window from the settings: minimum notice (minutes) and horizon (days).
pub async fn window(store: &Store) -> Result<(i64, u16), StoreError> {
    let min_notice = parsed::<i64>(store, SETTING_MIN_NOTICE).await?.unwrap_or(DEFAULT_MIN_NOTICE_MINUTES).max(0);
    let horizon = parsed::<u16>(store, SETTING_HORIZON).await?.unwrap_or(DEFAULT_HORIZON_DAYS).min(366);
    Ok((min_notice, horizon))
}

/// Free slots of `office` for `service` from `now`: active officials among its members, with their
/// own pattern (or `replace`'s) or the opening hours, their absences and imported busy times,
/// holidays (national + patron day), confirmed appointments (except `exclude`, the one being moved),
/// notice and horizon from the settings.
pub async fn offer(
    store: &Store,
    office: &Office,
    service: &Service,
    now: i64,
    exclude: Option<&str>,
    replace: Option<&PatternOverride<'_>>,
) -> Result<Offer, BackOfficeError> {
    let (min_notice, horizon_days) = window(store).await?;
    let patron = patron_day(store).await?;
    let tz = sportello_domain::europe_rome().unwrap_or(TimeZone::UTC);
    let now_ts = ts(now);
    let horizon_end =
        now_ts.to_zoned(tz.clone()).checked_add(Span::new().days(i64::from(horizon_days) + 1))?.timestamp();
    let first_year = tz.to_datetime(now_ts).year();
    let last_year = tz.to_datetime(horizon_end).year();
    let holidays = holiday_dates(first_year, last_year, patron)?;

    let office_pattern = pattern_from_opening_hours(&office.opening_hours);
    let members: Vec<User> = store
        .office_members(&office.id)
        .await?
        .into_iter()
        .filter(|u| u.active && u.role == StaffRole::Official)
        .collect();
    let mut officials = Vec::with_capacity(members.len());
    let mut users = Vec::with_capacity(members.len());
    for user in members {
        let own = match replace {
            Some(r) if r.user_id == user.id => r.pattern,
            _ => user.pattern.as_deref(),
        };
        let pattern = match own {
            Some(json) => pattern_from_json(json).map_err(|e| e.to_string()),
            None => office_pattern.clone().map_err(|e| e.to_string()),
        };
        match pattern {
            Ok(pattern) => {
                officials.push(Official {
                    id: OfficialId(users.len() as u64),
                    pattern,
                    absences: Vec::new(),
                    busy: Vec::new(),
                    appointments: Vec::new(),
                });
                users.push(user);
            }
            Err(error) => tracing::warn!(official = %user.id, %error, "unusable working pattern; not offered"),
        }
    }
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let busy =
        if ids.is_empty() { Vec::new() } else { store.busy_of_officials(&ids, now, horizon_end.as_second()).await? };
    // The officials' calendars: absences (whole days and hourly leave) and busy times imported
    // from their own calendars (docs/calendars.md).
    for absence in store.absences_of_users(&ids, now, horizon_end.as_second()).await? {
        let Some(i) = ids.iter().position(|id| *id == absence.user_id) else { continue };
        if let Some(iv) = interval(absence.starts_at, absence.ends_at) {
            officials[i].absences.push(iv);
        }
    }
    for external in store.busy_of_users(&ids, now, horizon_end.as_second()).await? {
        let Some(i) = ids.iter().position(|id| *id == external.user_id) else { continue };
        if let Some(iv) = interval(external.starts_at, external.ends_at) {
            officials[i].busy.push(iv);
        }
    }
    let mut load = HashMap::new();
    for appt in busy.iter().filter(|a| Some(a.id.as_str()) != exclude) {
        let Some(i) = ids.iter().position(|id| *id == appt.official_id) else { continue };
        if let Some(iv) = interval(appt.starts_at, appt.ends_at) {
            officials[i].appointments.push(iv);
        }
        *load.entry(OfficialId(i as u64)).or_insert(0) += 1;
    }
    if officials.is_empty() || service.duration_minutes <= 0 {
        return Ok(Offer { slots: Vec::new(), officials: users, load });
    }
    let request = AvailabilityRequest {
        tz,
        now: now_ts,
        officials,
        service: sportello_domain::Service {
            duration: SignedDuration::from_mins(service.duration_minutes),
            buffer_before: SignedDuration::ZERO,
            buffer_after: SignedDuration::ZERO,
            modes: modes(service.modes),
            step: None,
        },
        holidays: holidays.into_iter().collect::<BTreeSet<_>>(),
        min_notice: SignedDuration::from_mins(min_notice),
        horizon_days,
    };
    let slots = free_slots(&request)?;
    Ok(Offer { slots, officials: users, load })
}
