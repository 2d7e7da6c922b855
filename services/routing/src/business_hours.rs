//! A workspace's business hours: weekly open intervals in its time zone (daylight saving time
//! included), and when the current closed period began, so an away message goes out at most
//! once per conversation per closed period.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::RoutingError;

/// One weekly open interval, as stored (`weekday` 1 = Monday … 7 = Sunday, `HH:MM` times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredInterval {
    /// 1 = Monday … 7 = Sunday.
    pub weekday: i32,
    /// Opening time, `HH:MM`.
    pub opens: String,
    /// Closing time, `HH:MM`, after `opens` (an interval does not cross midnight).
    pub closes: String,
}

/// Business hours as stored in the workspace's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHours {
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// Open intervals; a weekday without one is closed all day.
    pub intervals: Vec<StoredInterval>,
}

impl StoredHours {
    /// The hours stored in a settings row's `business_hours` column (`None`: always open).
    pub fn from_column(value: Option<serde_json::Value>) -> Result<Option<Self>, RoutingError> {
        value
            .map(|value| {
                serde_json::from_value(value)
                    .map_err(|error| RoutingError::Corrupt(format!("stored business hours: {error}")))
            })
            .transpose()
    }
}

/// Checked business hours.
#[derive(Debug, Clone)]
pub struct Schedule {
    zone: Tz,
    intervals: Vec<(Weekday, NaiveTime, NaiveTime)>,
}

fn weekday(number: i32) -> Option<Weekday> {
    match number {
        1 => Some(Weekday::Mon),
        2 => Some(Weekday::Tue),
        3 => Some(Weekday::Wed),
        4 => Some(Weekday::Thu),
        5 => Some(Weekday::Fri),
        6 => Some(Weekday::Sat),
        7 => Some(Weekday::Sun),
        _ => None,
    }
}

fn time(field: &str, text: &str) -> Result<NaiveTime, RoutingError> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| RoutingError::Invalid(format!("{field}: {text:?} is not a time like 09:30")))
}

impl Schedule {
    /// Checks stored hours: a known time zone, weekdays 1–7, `opens` before `closes`.
    pub fn parse(hours: &StoredHours) -> Result<Self, RoutingError> {
        let zone: Tz = hours.time_zone.parse().map_err(|_| {
            RoutingError::Invalid(format!(
                "business_hours.time_zone: {:?} is not an IANA time zone (like Europe/Berlin)",
                hours.time_zone
            ))
        })?;
        let mut intervals = Vec::with_capacity(hours.intervals.len());
        for (index, interval) in hours.intervals.iter().enumerate() {
            let day = weekday(interval.weekday).ok_or_else(|| {
                RoutingError::Invalid(format!(
                    "business_hours.intervals[{index}].weekday: 1 (Monday) to 7 (Sunday)"
                ))
            })?;
            let opens = time(
                &format!("business_hours.intervals[{index}].opens"),
                &interval.opens,
            )?;
            let closes = time(
                &format!("business_hours.intervals[{index}].closes"),
                &interval.closes,
            )?;
            if opens >= closes {
                return Err(RoutingError::Invalid(format!(
                    "business_hours.intervals[{index}]: opens must be before closes (split an interval that crosses midnight in two)"
                )));
            }
            intervals.push((day, opens, closes));
        }
        Ok(Self { zone, intervals })
    }

    /// The UTC instants of the intervals that fall on the local date `days_back` days before
    /// `at`'s local date.
    fn instants_on(&self, at: DateTime<Utc>, days_back: i64) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let date = at.with_timezone(&self.zone).date_naive() - Duration::days(days_back);
        self.intervals
            .iter()
            .filter(|(day, _, _)| *day == date.weekday())
            .filter_map(|(_, opens, closes)| {
                let opens = self.zone.from_local_datetime(&date.and_time(*opens)).earliest()?;
                let closes = self
                    .zone
                    .from_local_datetime(&date.and_time(*closes))
                    .earliest()?;
                Some((opens.with_timezone(&Utc), closes.with_timezone(&Utc)))
            })
            .collect()
    }

    /// Whether the business is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        (0..=1).any(|days_back| {
            self.instants_on(at, days_back)
                .iter()
                .any(|(opens, closes)| *opens <= at && at < *closes)
        })
    }

    /// When the closed period `at` falls in began (the last closing before it); `None` while
    /// open, or when it never opened in the last week (closed for good).
    pub fn closed_since(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(at) {
            return None;
        }
        (0..=8)
            .flat_map(|days_back| self.instants_on(at, days_back))
            .map(|(_, closes)| closes)
            .filter(|closes| *closes <= at)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(zone: &str, intervals: &[(i32, &str, &str)]) -> Schedule {
        Schedule::parse(&StoredHours {
            time_zone: zone.to_owned(),
            intervals: intervals
                .iter()
                .map(|(weekday, opens, closes)| StoredInterval {
                    weekday: *weekday,
                    opens: (*opens).to_owned(),
                    closes: (*closes).to_owned(),
                })
                .collect(),
        })
        .unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weekdays_nine_to_five_in_berlin_with_summer_time() {
        let schedule = hours(
            "Europe/Berlin",
            &[
                (1, "09:00", "17:00"),
                (2, "09:00", "17:00"),
                (3, "09:00", "17:00"),
                (4, "09:00", "17:00"),
                (5, "09:00", "17:00"),
            ],
        );
        // Monday 2 June 2025, 10:00 in Berlin (UTC+2) is open; 17:30 is closed since 17:00.
        assert!(schedule.is_open(utc("2025-06-02T08:00:00Z")));
        assert!(!schedule.is_open(utc("2025-06-02T15:30:00Z")));
        assert_eq!(
            schedule.closed_since(utc("2025-06-02T15:30:00Z")),
            Some(utc("2025-06-02T15:00:00Z"))
        );
        // In winter (UTC+1) the same UTC time is 16:30 in Berlin: open.
        assert!(schedule.is_open(utc("2025-01-06T15:30:00Z")));
        assert!(!schedule.is_open(utc("2025-01-06T16:30:00Z")));
        // A Sunday belongs to the closed period that began on Friday at 17:00.
        assert_eq!(
            schedule.closed_since(utc("2025-06-08T12:00:00Z")),
            Some(utc("2025-06-06T15:00:00Z"))
        );
    }

    #[test]
    fn bad_hours_are_refused_and_no_hours_is_closed_for_good() {
        for (zone, interval) in [
            ("Mars/Olympus", (1, "09:00", "17:00")),
            ("UTC", (8, "09:00", "17:00")),
            ("UTC", (1, "9am", "17:00")),
            ("UTC", (1, "18:00", "09:00")),
        ] {
            let stored = StoredHours {
                time_zone: zone.to_owned(),
                intervals: vec![StoredInterval {
                    weekday: interval.0,
                    opens: interval.1.to_owned(),
                    closes: interval.2.to_owned(),
                }],
            };
            assert!(Schedule::parse(&stored).is_err(), "{stored:?}");
        }
        let never = hours("UTC", &[]);
        assert!(!never.is_open(utc("2025-06-02T08:00:00Z")));
        assert_eq!(never.closed_since(utc("2025-06-02T08:00:00Z")), None);
    }
}
