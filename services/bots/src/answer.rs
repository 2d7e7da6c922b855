//! Reading a customer's reply to an `ask` state by the question's answer type: what is kept
//! (a canonical spelling: E.164 for a phone, a lower-case address for an e-mail, ISO dates and
//! 24-hour times, the option's own text for a choice), or why the reply does not answer it.
//! Matching ignores case and accents, so "Sí" answers the option "si" and "CAFE" "Café".

use chrono::{NaiveDate, NaiveTime};
use switchboard_domain::normalize::{CountryId, PhoneOrigin, normalize_email, normalize_phone};
use unicode_normalization::UnicodeNormalization as _;

/// The longest text answer kept, in characters.
pub const MAX_TEXT_CHARS: usize = 4_096;

/// What kind of answer a question wants (`ask`'s `answer_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerType {
    /// Any text.
    Text,
    /// A number (a decimal comma is read as a point).
    Number,
    /// An e-mail address.
    Email,
    /// A phone number, kept in E.164.
    Phone,
    /// A calendar date, kept as `YYYY-MM-DD`.
    Date,
    /// A time of day, kept as `HH:MM`.
    Time,
    /// One of the question's options, by its text or its number.
    Choice,
}

impl AnswerType {
    /// The answer type named `name` (one of [`crate::states::ANSWER_TYPES`]).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "text" => Self::Text,
            "number" => Self::Number,
            "email" => Self::Email,
            "phone" => Self::Phone,
            "date" => Self::Date,
            "time" => Self::Time,
            "choice" => Self::Choice,
            _ => return None,
        })
    }
}

/// How a date written with slashes or dots is read: `03/04/2027` is 3 April day-first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    /// Day, month, year (most of the world).
    DayFirst,
    /// Month, day, year (the United States).
    MonthFirst,
}

/// What reading an answer needs besides the reply.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    /// The question's options (for [`AnswerType::Choice`]).
    pub options: &'a [String],
    /// The workspace's country, for phone numbers written without `+`.
    pub default_country: Option<CountryId>,
    /// How dates with slashes or dots are read.
    pub date_order: DateOrder,
}

/// Why a reply does not answer the question (the flow then sends its retry message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAnAnswer {
    /// Nothing but blanks.
    #[error("the reply is empty")]
    Empty,
    /// Longer than [`MAX_TEXT_CHARS`].
    #[error("the reply is longer than {MAX_TEXT_CHARS} characters")]
    TooLong,
    /// Not of the wanted type; says what was expected.
    #[error("{0:?} is not {1}")]
    Invalid(String, &'static str),
    /// Matches none of the options, or more than one.
    #[error("{0:?} is not one of the options")]
    NoOption(String),
}

/// Reads `reply` as an answer of `answer_type`; `Ok` holds the value to keep.
pub fn read_answer(
    answer_type: AnswerType,
    reply: &str,
    reading: &Reading<'_>,
) -> Result<String, NotAnAnswer> {
    let reply = reply.trim();
    if reply.is_empty() {
        return Err(NotAnAnswer::Empty);
    }
    if reply.chars().count() > MAX_TEXT_CHARS {
        return Err(NotAnAnswer::TooLong);
    }
    let invalid = |what| NotAnAnswer::Invalid(reply.to_owned(), what);
    match answer_type {
        AnswerType::Text => Ok(reply.to_owned()),
        AnswerType::Number => read_number(reply).ok_or_else(|| invalid("a number")),
        AnswerType::Email => normalize_email(reply).map_err(|_| invalid("an e-mail address")),
        AnswerType::Phone => normalize_phone(reply, PhoneOrigin::Entered, reading.default_country)
            .map_err(|_| invalid("a phone number")),
        AnswerType::Date => read_date(reply, reading.date_order)
            .map(|date| date.format("%Y-%m-%d").to_string())
            .ok_or_else(|| invalid("a date")),
        AnswerType::Time => read_time(reply)
            .map(|time| time.format("%H:%M").to_string())
            .ok_or_else(|| invalid("a time of day")),
        AnswerType::Choice => read_choice(reply, reading.options)
            .map(|index| reading.options[index].clone())
            .ok_or_else(|| NotAnAnswer::NoOption(reply.to_owned())),
    }
}

/// `12`, `-3.5`, `3,5` (decimal comma) or `1 200` as a canonical number (`3.5`, `1200`).
fn read_number(reply: &str) -> Option<String> {
    let compact: String = reply
        .chars()
        .filter(|character| !character.is_whitespace())
        .collect();
    let decimal = match compact.split_once(',') {
        // "1,200" is 1200 in one locale and 1.2 in another: not an answer either way.
        Some((_, after)) if after.len() == 3 && after.bytes().all(|byte| byte.is_ascii_digit()) => {
            return None;
        }
        Some((before, after)) if !after.contains(',') && !compact.contains('.') => {
            format!("{before}.{after}")
        }
        Some(_) => return None,
        None => compact,
    };
    let number: f64 = decimal.parse().ok()?;
    if !number.is_finite() {
        return None;
    }
    Some(if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{number:.0}")
    } else {
        number.to_string()
    })
}

/// ISO `2027-04-03`, or `03/04/2027`, `03.04.2027`, `3-4-2027` in `order` (four-digit years).
fn read_date(reply: &str, order: DateOrder) -> Option<NaiveDate> {
    if let Ok(date) = NaiveDate::parse_from_str(reply, "%Y-%m-%d") {
        return Some(date);
    }
    let parts: Vec<&str> = reply.split(['/', '.', '-']).map(str::trim).collect();
    let [first, second, year] = parts.as_slice() else {
        return None;
    };
    let (day, month) = match order {
        DateOrder::DayFirst => (first, second),
        DateOrder::MonthFirst => (second, first),
    };
    // Four digits only: "17/05/90" could be 1990 or 2090.
    if year.len() != 4 || !year.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let year: i32 = year.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month.parse().ok()?, day.parse().ok()?)
}

/// `14:30`, `9:05`, `2pm`, `2:30 PM`, `12am` as a time of day.
fn read_time(reply: &str) -> Option<NaiveTime> {
    let lower = reply.to_lowercase().replace(' ', "");
    let (clock, meridiem) = if let Some(clock) = lower.strip_suffix("am") {
        (clock, Some(false))
    } else if let Some(clock) = lower.strip_suffix("pm") {
        (clock, Some(true))
    } else {
        (lower.as_str(), None)
    };
    let (hours, minutes) = match clock.split_once([':', 'h', '.']) {
        Some((hours, "")) => (hours.parse::<u32>().ok()?, 0),
        Some((hours, minutes)) if minutes.len() == 2 => {
            (hours.parse::<u32>().ok()?, minutes.parse::<u32>().ok()?)
        }
        Some(_) => return None,
        None if meridiem.is_some() => (clock.parse::<u32>().ok()?, 0),
        None => return None,
    };
    let hours = match meridiem {
        Some(_) if !(1..=12).contains(&hours) => return None,
        Some(false) => hours % 12,
        Some(true) => hours % 12 + 12,
        None => hours,
    };
    NaiveTime::from_hms_opt(hours, minutes, 0)
}

/// The option `reply` names: its whole text, else its number (1-based), else the one option whose
/// text contains the reply, ignoring case and accents. `None` when none or several match.
fn read_choice(reply: &str, options: &[String]) -> Option<usize> {
    let wanted = folded(reply);
    let folded_options: Vec<String> = options.iter().map(|option| folded(option)).collect();
    if let Some(index) = folded_options.iter().position(|option| *option == wanted) {
        return Some(index);
    }
    if let Ok(number) = reply.parse::<usize>()
        && (1..=options.len()).contains(&number)
    {
        return Some(number - 1);
    }
    let mut containing = folded_options
        .iter()
        .enumerate()
        .filter(|(_, option)| option.contains(&wanted));
    match (containing.next(), containing.next()) {
        (Some((index, _)), None) => Some(index),
        _ => None,
    }
}

/// `text` lower-cased, without accents (canonical decomposition, combining marks dropped) and
/// with runs of blanks made one space: how replies and options are compared.
pub fn folded(text: &str) -> String {
    let bare: String = without_accents(text)
        .chars()
        .flat_map(char::to_lowercase)
        .collect();
    bare.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` without accents: canonical decomposition, combining marks dropped (`é` → `e`).
pub(crate) fn without_accents(text: &str) -> String {
    text.nfd()
        .filter(|character| !unicode_normalization::char::is_combining_mark(*character))
        .collect()
}

#[cfg(test)]
mod tests {
    use switchboard_domain::normalize::parse_country;

    use super::*;

    fn read(answer_type: AnswerType, reply: &str) -> Result<String, NotAnAnswer> {
        let options = ["Café".to_owned(), "Sí, claro".to_owned(), "No".to_owned()];
        let reading = Reading {
            options: &options,
            default_country: parse_country("BR").ok(),
            date_order: DateOrder::DayFirst,
        };
        read_answer(answer_type, reply, &reading)
    }

    #[test]
    fn every_answer_type_keeps_a_canonical_value() {
        let accepted = [
            (AnswerType::Text, "  Ana Souza ", "Ana Souza"),
            (AnswerType::Number, "3,5", "3.5"),
            (AnswerType::Number, "1 200", "1200"),
            (AnswerType::Number, "-7", "-7"),
            (AnswerType::Email, " Ana@Example.COM ", "ana@example.com"),
            (AnswerType::Phone, "+1 (650) 555-0101", "+16505550101"),
            (AnswerType::Phone, "(11) 96123-4567", "+5511961234567"),
            (AnswerType::Date, "2027-04-03", "2027-04-03"),
            (AnswerType::Date, "03/04/2027", "2027-04-03"),
            (AnswerType::Date, "3-4-2027", "2027-04-03"),
            (AnswerType::Time, "14:30", "14:30"),
            (AnswerType::Time, "9h05", "09:05"),
            (AnswerType::Time, "2pm", "14:00"),
            (AnswerType::Time, "12:15 AM", "00:15"),
            (AnswerType::Choice, "2", "Sí, claro"),
            (AnswerType::Choice, "CAFE", "Café"),
            (AnswerType::Choice, "si", "Sí, claro"),
            (AnswerType::Choice, "  no ", "No"),
        ];
        for (answer_type, reply, kept) in accepted {
            assert_eq!(
                read(answer_type, reply).as_deref(),
                Ok(kept),
                "{answer_type:?} {reply:?}"
            );
        }
    }

    #[test]
    fn replies_that_do_not_answer_say_why() {
        assert_eq!(read(AnswerType::Text, "   "), Err(NotAnAnswer::Empty));
        assert_eq!(
            read(AnswerType::Text, &"a".repeat(MAX_TEXT_CHARS + 1)),
            Err(NotAnAnswer::TooLong)
        );
        let refused = [
            (AnswerType::Number, "three", "a number"),
            (AnswerType::Number, "1,5.3", "a number"),
            (AnswerType::Number, "1,200", "a number"),
            (AnswerType::Number, "inf", "a number"),
            (AnswerType::Date, "17/05/90", "a date"),
            (AnswerType::Email, "ana at example", "an e-mail address"),
            (AnswerType::Phone, "12", "a phone number"),
            (AnswerType::Date, "31/02/2027", "a date"),
            (AnswerType::Date, "tomorrow", "a date"),
            (AnswerType::Time, "25:00", "a time of day"),
            (AnswerType::Time, "13pm", "a time of day"),
        ];
        for (answer_type, reply, what) in refused {
            assert_eq!(
                read(answer_type, reply),
                Err(NotAnAnswer::Invalid(reply.to_owned(), what)),
                "{answer_type:?} {reply:?}"
            );
        }
        // "o" is in "No" and in "claro": two options, so it names none.
        assert_eq!(
            read(AnswerType::Choice, "o"),
            Err(NotAnAnswer::NoOption("o".to_owned()))
        );
        assert_eq!(
            read(AnswerType::Choice, "4"),
            Err(NotAnAnswer::NoOption("4".to_owned()))
        );
    }

    #[test]
    fn an_option_named_like_a_number_is_chosen_by_its_text() {
        let options = ["3".to_owned(), "2".to_owned(), "1".to_owned()];
        let reading = Reading {
            options: &options,
            default_country: None,
            date_order: DateOrder::DayFirst,
        };
        assert_eq!(read_answer(AnswerType::Choice, "1", &reading).as_deref(), Ok("1"));
    }

    #[test]
    fn month_first_dates_read_the_month_first() {
        let reading = Reading {
            options: &[],
            default_country: None,
            date_order: DateOrder::MonthFirst,
        };
        assert_eq!(
            read_answer(AnswerType::Date, "04/03/2027", &reading).as_deref(),
            Ok("2027-04-03")
        );
    }

    #[test]
    fn folding_ignores_case_accents_and_blank_runs() {
        assert_eq!(folded("  Ça   VA  Très Bien "), "ca va tres bien");
        assert_eq!(folded("Ñandú"), "nandu");
    }

    #[test]
    fn every_answer_type_name_parses() {
        for name in crate::states::ANSWER_TYPES {
            assert!(AnswerType::parse(name).is_some(), "{name}");
        }
        assert_eq!(AnswerType::parse("colour"), None);
    }
}
