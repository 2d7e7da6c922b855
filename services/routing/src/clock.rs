//! The time routing decides business hours at (the away and at-capacity replies): the system
//! clock, or one shifted by `routing.clock_start` so that a test can pin the time of day those
//! decisions see without waiting for it.

use chrono::{DateTime, TimeDelta, Utc};

/// Routing's clock for business-hours decisions. `Copy`: it is a fixed offset from the system
/// clock, so every copy reads the same time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    /// Added to the system clock (zero: the system clock itself).
    offset: TimeDelta,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that reads `start` now and then runs on at the system clock's pace.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            offset: start - Utc::now(),
        }
    }

    /// The clock `routing.clock_start` asks for: shifted to start there when it is set, else the
    /// system clock.
    pub fn from_start(start: Option<DateTime<Utc>>) -> Self {
        start.map_or_else(Self::system, Self::starting_at)
    }

    /// The current time on this clock.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let clock = Clock::system();
        let before = Utc::now();
        let now = clock.now();
        assert!(before <= now && now <= Utc::now());
        assert_eq!(Clock::from_start(None), clock);
    }

    #[test]
    fn a_started_clock_reads_its_start_and_runs_on_from_there() {
        let start = DateTime::parse_from_rfc3339("2025-06-02T23:59:30Z")
            .expect("a valid instant")
            .with_timezone(&Utc);
        let clock = Clock::from_start(Some(start));
        let first = clock.now();
        assert!(first >= start && first - start < TimeDelta::seconds(5), "{first}");
        let copy = clock;
        assert!(
            copy.now() >= first,
            "copies share the offset and time moves forward"
        );
    }
}
