//! Italian public holidays: the national ones (L. 260/1949 art. 2 as the offices observe them) plus
//! the town's patron-saint day, which is a holiday only in that municipality.

use std::collections::BTreeSet;

use jiff::civil::Date;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    pub date: Date,
    /// Italian name, for display.
    pub name: &'static str,
}

/// The day of the town's patron saint, e.g. 7 December (Sant'Ambrogio) in Milan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatronDay {
    month: i8,
    day: i8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HolidayError {
    /// The Gregorian computus is only meaningful from 1583 on; jiff dates end in 9999.
    #[error("year {0} is outside 1583..=9999")]
    YearOutOfRange(i16),
    #[error("{day}/{month} is not a day of the year")]
    InvalidPatronDay { month: i8, day: i8 },
}

/// First year in which 4 October (San Francesco d'Assisi) is a national holiday again (L. 151/2025).
const SAN_FRANCESCO_SINCE: i16 = 2026;

impl PatronDay {
    pub fn new(month: i8, day: i8) -> Result<Self, HolidayError> {
        // Checked against a leap year so that 29 February is accepted (and skipped in other years).
        Date::new(2024, month, day).map_err(|_| HolidayError::InvalidPatronDay { month, day })?;
        Ok(PatronDay { month, day })
    }

    pub fn month(&self) -> i8 {
        self.month
    }

    pub fn day(&self) -> i8 {
        self.day
    }
}

/// Easter Sunday of `year` (Gregorian calendar), by the anonymous Gregorian algorithm
/// (Meeus/Jones/Butcher): pure integer arithmetic, no table.
pub fn easter_sunday(year: i16) -> Result<Date, HolidayError> {
    check_year(year)?;
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    // month ∈ {3, 4} and day ∈ 1..=31 by construction; the conversion cannot fail.
    Date::new(year, month as i8, day as i8).map_err(|_| HolidayError::YearOutOfRange(year))
}

/// National public holidays of `year`, sorted by date. A date may appear twice when two feasts
/// coincide (Easter Monday fell on 25 April in 2011).
pub fn national_holidays(year: i16) -> Result<Vec<Holiday>, HolidayError> {
    let easter = easter_sunday(year)?;
    let easter_monday = easter.tomorrow().map_err(|_| HolidayError::YearOutOfRange(year))?;
    let fixed: &[(i8, i8, &'static str)] = &[
        (1, 1, "Capodanno"),
        (1, 6, "Epifania"),
        (4, 25, "Festa della Liberazione"),
        (5, 1, "Festa del Lavoro"),
        (6, 2, "Festa della Repubblica"),
        (8, 15, "Ferragosto"),
        (11, 1, "Ognissanti"),
        (12, 8, "Immacolata Concezione"),
        (12, 25, "Natale"),
        (12, 26, "Santo Stefano"),
    ];
    let mut out = Vec::with_capacity(fixed.len() + 3);
    for &(month, day, name) in fixed {
        let date = Date::new(year, month, day).map_err(|_| HolidayError::YearOutOfRange(year))?;
        out.push(Holiday { date, name });
    }
    out.push(Holiday { date: easter, name: "Pasqua" });
    out.push(Holiday { date: easter_monday, name: "Lunedì dell'Angelo" });
    if year >= SAN_FRANCESCO_SINCE {
        let date = Date::new(year, 10, 4).map_err(|_| HolidayError::YearOutOfRange(year))?;
        out.push(Holiday { date, name: "San Francesco d'Assisi" });
    }
    out.sort_by_key(|h| h.date);
    Ok(out)
}

/// National holidays plus the patron-saint day of `year`, sorted by date.
pub fn holidays(year: i16, patron: Option<PatronDay>) -> Result<Vec<Holiday>, HolidayError> {
    let mut out = national_holidays(year)?;
    if let Some(p) = patron {
        // 29 February patrons have no holiday in common years.
        if let Ok(date) = Date::new(year, p.month, p.day) {
            out.push(Holiday { date, name: "Santo patrono" });
            out.sort_by_key(|h| h.date);
        }
    }
    Ok(out)
}

/// The set of holiday dates for every year in `first_year..=last_year`: what the availability
/// engine consumes.
pub fn holiday_dates(
    first_year: i16,
    last_year: i16,
    patron: Option<PatronDay>,
) -> Result<BTreeSet<Date>, HolidayError> {
    let mut out = BTreeSet::new();
    for year in first_year..=last_year {
        out.extend(holidays(year, patron)?.into_iter().map(|h| h.date));
    }
    Ok(out)
}

fn check_year(year: i16) -> Result<(), HolidayError> {
    if (1583..=9999).contains(&year) { Ok(()) } else { Err(HolidayError::YearOutOfRange(year)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn easter_dates_of_known_years() {
        for (year, month, day) in [
            (1818, 3, 22), // earliest possible date
            (1943, 4, 25), // latest possible date
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2028, 4, 16),
            (2038, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter_sunday(year), Ok(date(year, month, day)), "Easter {year}");
        }
    }

    #[test]
    fn years_outside_the_gregorian_range_are_rejected() {
        assert_eq!(easter_sunday(1582), Err(HolidayError::YearOutOfRange(1582)));
        assert!(national_holidays(-5).is_err());
    }

    #[test]
    fn national_holidays_of_2027() {
        let dates: Vec<Date> = national_holidays(2027).expect("2027").iter().map(|h| h.date).collect();
        let expected = [
            date(2027, 1, 1),
            date(2027, 1, 6),
            date(2027, 3, 28),
            date(2027, 3, 29),
            date(2027, 4, 25),
            date(2027, 5, 1),
            date(2027, 6, 2),
            date(2027, 8, 15),
            date(2027, 10, 4),
            date(2027, 11, 1),
            date(2027, 12, 8),
            date(2027, 12, 25),
            date(2027, 12, 26),
        ];
        assert_eq!(dates, expected);
    }

    #[test]
    fn san_francesco_only_from_2026() {
        let has_4_oct = |y: i16| national_holidays(y).expect("year").iter().any(|h| h.date == date(y, 10, 4));
        assert!(!has_4_oct(2025));
        assert!(has_4_oct(2026));
    }

    #[test]
    fn coinciding_feasts_are_both_listed_but_one_date() {
        let list = national_holidays(2011).expect("2011");
        assert_eq!(list.iter().filter(|h| h.date == date(2011, 4, 25)).count(), 2);
        let set = holiday_dates(2011, 2011, None).expect("2011");
        assert_eq!(set.len(), list.len() - 1);
    }

    #[test]
    fn patron_day_is_added_and_validated() {
        let milan = PatronDay::new(12, 7).expect("7 December");
        let set = holiday_dates(2026, 2027, Some(milan)).expect("years");
        assert!(set.contains(&date(2026, 12, 7)) && set.contains(&date(2027, 12, 7)));
        assert!(!set.contains(&date(2027, 12, 9)));
        assert_eq!(PatronDay::new(2, 30), Err(HolidayError::InvalidPatronDay { month: 2, day: 30 }));
        assert_eq!(PatronDay::new(13, 1), Err(HolidayError::InvalidPatronDay { month: 13, day: 1 }));
        let leap = PatronDay::new(2, 29).expect("29 February");
        assert!(holidays(2027, Some(leap)).expect("2027").iter().all(|h| h.name != "Santo patrono"));
        assert!(holidays(2028, Some(leap)).expect("2028").iter().any(|h| h.date == date(2028, 2, 29)));
    }
}
