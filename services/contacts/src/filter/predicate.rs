//! The resolution step shared by [`validate`](super::validate), [`to_sql`](super::to_sql) and
//! [`matches`](super::matches): a condition is checked and reduced to a positive test plus
//! negation; the bounds it compares against are resolved against `now`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

use super::profile::{ArraySource, FlagSource, InstantSource, Profile, Shape, TextSource, profile};
use super::{Condition, FieldType, FilterError, FilterValue, MAX_LIST_VALUES, MAX_WITHIN_DAYS, Operator};

/// A condition reduced to a positive test, possibly negated.
pub(super) struct Predicate<'a> {
    pub(super) negated: bool,
    pub(super) test: Test<'a>,
}

pub(super) enum Test<'a> {
    Text(TextSource<'a>, TextCheck<'a>),
    Array(ArraySource<'a>, ArrayCheck<'a>),
    Instant(InstantSource<'a>, TimeCheck<DateTime<Utc>>),
    Day(&'a str, TimeCheck<NaiveDate>),
    Number(&'a str, NumberCheck),
    Flag(FlagSource<'a>, FlagCheck),
}

pub(super) enum TextCheck<'a> {
    IsSet,
    Equals(&'a str),
    Contains(&'a str),
    StartsWith(&'a str),
    EqualsOneOf(&'a [String]),
}

pub(super) enum ArrayCheck<'a> {
    IsSet,
    HasAny(&'a [String]),
    HasAll(&'a [String]),
}

pub(super) enum TimeCheck<T> {
    IsSet,
    Compare(Order, Bound<T>),
}

/// A fixed time or date, or one computed from `now`.
pub(super) enum Bound<T> {
    Fixed(T),
    /// `now - duration` (for dates: its UTC date).
    Ago(Duration),
}

pub(super) enum NumberCheck {
    IsSet,
    Equals(f64),
    Compare(Order, f64),
}

pub(super) enum FlagCheck {
    IsSet,
    Equals(bool),
}

/// An order comparison: `value <op> bound`.
#[derive(Clone, Copy)]
pub(super) enum Order {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// Checks one condition and reduces it to a positive test plus negation.
pub(super) fn resolve<'a>(
    condition: &'a Condition,
    fields: &HashMap<String, FieldType>,
) -> Result<Predicate<'a>, FilterError> {
    let Profile { shape, kind, allowed } = profile(&condition.field, fields)?;
    let op = condition.op;
    let not_applicable = || FilterError::OperatorNotApplicable {
        field: condition.field.clone(),
        kind,
        op,
        allowed,
    };
    if !allowed.contains(&op) {
        return Err(not_applicable());
    }
    let value = ValueCheck { condition };
    let (negated, positive) = op.split_negation();
    let test = match (shape, positive) {
        (Shape::Text(source), Operator::IsSet) => {
            Test::Text(source, value.none().map(|()| TextCheck::IsSet)?)
        }
        (Shape::Text(source), Operator::Eq) => Test::Text(source, TextCheck::Equals(value.text()?)),
        (Shape::Text(source), Operator::Contains) => Test::Text(source, TextCheck::Contains(value.text()?)),
        (Shape::Text(source), Operator::StartsWith) => {
            Test::Text(source, TextCheck::StartsWith(value.text()?))
        }
        (Shape::Text(source), Operator::In) => Test::Text(source, TextCheck::EqualsOneOf(value.list()?)),
        (Shape::Array(source), Operator::IsSet) => {
            Test::Array(source, value.none().map(|()| ArrayCheck::IsSet)?)
        }
        (Shape::Array(source), Operator::Eq) => Test::Array(
            source,
            ArrayCheck::HasAny(std::slice::from_ref(value.text_string()?)),
        ),
        (Shape::Array(source), Operator::HasAny) => Test::Array(source, ArrayCheck::HasAny(value.list()?)),
        (Shape::Array(source), Operator::HasAll) => Test::Array(source, ArrayCheck::HasAll(value.list()?)),
        (Shape::Instant(source), Operator::IsSet) => {
            Test::Instant(source, value.none().map(|()| TimeCheck::IsSet)?)
        }
        (Shape::Instant(source), Operator::WithinLast) => Test::Instant(
            source,
            TimeCheck::Compare(Order::Gte, Bound::Ago(value.duration()?)),
        ),
        (Shape::Instant(source), order_op) => {
            let order = Order::from_operator(order_op).ok_or_else(not_applicable)?;
            Test::Instant(source, TimeCheck::Compare(order, Bound::Fixed(value.time()?)))
        }
        (Shape::Day(key), Operator::IsSet) => Test::Day(key, value.none().map(|()| TimeCheck::IsSet)?),
        (Shape::Day(key), Operator::WithinLast) => {
            Test::Day(key, TimeCheck::Compare(Order::Gte, Bound::Ago(value.duration()?)))
        }
        (Shape::Day(key), order_op) => {
            let order = Order::from_operator(order_op).ok_or_else(not_applicable)?;
            Test::Day(key, TimeCheck::Compare(order, Bound::Fixed(value.date()?)))
        }
        (Shape::Number(key), Operator::IsSet) => {
            Test::Number(key, value.none().map(|()| NumberCheck::IsSet)?)
        }
        (Shape::Number(key), Operator::Eq) => Test::Number(key, NumberCheck::Equals(value.number()?)),
        (Shape::Number(key), order_op) => {
            let order = Order::from_operator(order_op).ok_or_else(not_applicable)?;
            Test::Number(key, NumberCheck::Compare(order, value.number()?))
        }
        (Shape::Flag(source), Operator::IsSet) => {
            Test::Flag(source, value.none().map(|()| FlagCheck::IsSet)?)
        }
        (Shape::Flag(source), Operator::Eq) => Test::Flag(source, FlagCheck::Equals(value.flag()?)),
        _ => return Err(not_applicable()),
    };
    Ok(Predicate { negated, test })
}

/// Checks the value of a condition against what its operator needs.
struct ValueCheck<'a> {
    condition: &'a Condition,
}

impl<'a> ValueCheck<'a> {
    fn wrong(&self, expected: &'static str) -> FilterError {
        FilterError::WrongValue {
            field: self.condition.field.clone(),
            op: self.condition.op,
            expected,
            got: self.condition.value.clone(),
        }
    }

    fn none(&self) -> Result<(), FilterError> {
        match &self.condition.value {
            FilterValue::None => Ok(()),
            _ => Err(self.wrong("no value")),
        }
    }

    fn text_string(&self) -> Result<&'a String, FilterError> {
        match &self.condition.value {
            FilterValue::Text(text) if text.is_empty() => Err(FilterError::EmptyText {
                field: self.condition.field.clone(),
                op: self.condition.op,
            }),
            FilterValue::Text(text) => Ok(text),
            _ => Err(self.wrong("a text")),
        }
    }

    fn text(&self) -> Result<&'a str, FilterError> {
        self.text_string().map(String::as_str)
    }

    fn list(&self) -> Result<&'a [String], FilterError> {
        let FilterValue::List(list) = &self.condition.value else {
            return Err(self.wrong("a list of texts"));
        };
        let empty = list.iter().filter(|text| text.is_empty()).count();
        if list.is_empty() || list.len() > MAX_LIST_VALUES || empty > 0 {
            return Err(FilterError::BadList {
                field: self.condition.field.clone(),
                op: self.condition.op,
                count: list.len(),
                empty,
            });
        }
        Ok(list)
    }

    fn number(&self) -> Result<f64, FilterError> {
        match self.condition.value {
            FilterValue::Number(number) if number.is_finite() => Ok(number),
            FilterValue::Number(number) => Err(FilterError::NotFinite {
                field: self.condition.field.clone(),
                number,
            }),
            _ => Err(self.wrong("a number")),
        }
    }

    fn flag(&self) -> Result<bool, FilterError> {
        match self.condition.value {
            FilterValue::Bool(flag) => Ok(flag),
            _ => Err(self.wrong("a boolean")),
        }
    }

    fn out_of_range(&self) -> FilterError {
        FilterError::OutOfRange {
            field: self.condition.field.clone(),
            value: self.condition.value.clone(),
        }
    }

    fn time(&self) -> Result<DateTime<Utc>, FilterError> {
        match self.condition.value {
            FilterValue::Time(time) if year_in_range(time.year()) => Ok(time),
            FilterValue::Time(_) => Err(self.out_of_range()),
            _ => Err(self.wrong("a time")),
        }
    }

    fn date(&self) -> Result<NaiveDate, FilterError> {
        match self.condition.value {
            FilterValue::Date(date) if year_in_range(date.year()) => Ok(date),
            FilterValue::Date(_) => Err(self.out_of_range()),
            _ => Err(self.wrong("a date")),
        }
    }

    fn duration(&self) -> Result<Duration, FilterError> {
        match self.condition.value {
            FilterValue::Duration(duration) if duration <= max_within_duration() => Ok(duration),
            FilterValue::Duration(duration) => Err(FilterError::DurationTooLong {
                field: self.condition.field.clone(),
                op: self.condition.op,
                duration,
            }),
            _ => Err(self.wrong("a duration")),
        }
    }
}

fn year_in_range(year: i32) -> bool {
    (1..=9999).contains(&year)
}

fn max_within_duration() -> Duration {
    Duration::from_secs(MAX_WITHIN_DAYS * 24 * 60 * 60)
}

impl Order {
    fn from_operator(op: Operator) -> Option<Self> {
        match op {
            Operator::Gt => Some(Self::Gt),
            Operator::Gte => Some(Self::Gte),
            Operator::Lt => Some(Self::Lt),
            Operator::Lte => Some(Self::Lte),
            _ => None,
        }
    }

    pub(super) fn sql(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
        }
    }

    /// Whether `value <op> bound` holds, given `value.cmp(bound)`.
    pub(super) fn holds(self, ordering: Ordering) -> bool {
        match self {
            Self::Gt => ordering == Ordering::Greater,
            Self::Gte => ordering != Ordering::Less,
            Self::Lt => ordering == Ordering::Less,
            Self::Lte => ordering != Ordering::Greater,
        }
    }
}

/// Drops the sub-microsecond part (PostgreSQL keeps microseconds).
pub(super) fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = time.nanosecond();
    time.with_nanosecond(nanos - nanos % 1_000).unwrap_or(time)
}

/// `now - duration`, truncated to microseconds, within the years 1 to 9999.
fn time_ago(now: DateTime<Utc>, duration: Duration) -> Result<DateTime<Utc>, FilterError> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| now.checked_sub_signed(delta))
        .filter(|threshold| year_in_range(threshold.year()))
        .map(truncate_to_micros)
        .ok_or(FilterError::ThresholdOutOfRange { now, duration })
}

impl Bound<DateTime<Utc>> {
    pub(super) fn resolve(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, FilterError> {
        match self {
            Self::Fixed(time) => Ok(truncate_to_micros(*time)),
            Self::Ago(duration) => time_ago(now, *duration),
        }
    }
}

impl Bound<NaiveDate> {
    pub(super) fn resolve(&self, now: DateTime<Utc>) -> Result<NaiveDate, FilterError> {
        match self {
            Self::Fixed(date) => Ok(*date),
            Self::Ago(duration) => time_ago(now, *duration).map(|threshold| threshold.date_naive()),
        }
    }
}

/// The text comparison against stored `YYYY-MM-DDTHH:MM:SSZ` values that equals
/// `value <order> bound` on times: stored values are whole seconds, so a bound with a
/// fraction compares like its whole second with `gte` → `gt` and `lt` → `lte`.
pub(super) fn stored_datetime_comparison(order: Order, bound: DateTime<Utc>) -> (Order, String) {
    let whole_second = bound.with_nanosecond(0).unwrap_or(bound);
    let has_fraction = whole_second != bound;
    let adjusted = match (order, has_fraction) {
        (Order::Gte, true) => Order::Gt,
        (Order::Lt, true) => Order::Lte,
        (unchanged, _) => unchanged,
    };
    (adjusted, whole_second.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

pub(super) fn stored_date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}
