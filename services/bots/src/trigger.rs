//! What starts a flow: the triggers its document lists, each matched against what happened in
//! a conversation (a new conversation under the bot, a message, a button payload, a referral, a
//! tag added, a field changed), optionally only on some channel accounts. Keywords match exactly,
//! by containment or by a regular expression, ignoring case and accents. When several flows'
//! triggers match, the highest `priority` wins, and equal priorities go to the first candidate
//! in the order the caller gives (it lists flows in a stable order).

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::answer::folded;

/// Most triggers one flow may have.
pub const MAX_TRIGGERS: usize = 50;
/// Most values (keywords, payloads, …) one trigger may have.
pub const MAX_TRIGGER_VALUES: usize = 100;
/// Longest regular expression a keyword trigger may compile to, in bytes of the compiled program.
const REGEX_SIZE_LIMIT: usize = 1 << 16;

/// What a trigger waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A conversation opens under the bot.
    NewConversation,
    /// A customer's message matches one of `values`.
    Keyword,
    /// A button or quick-reply payload is one of `values`.
    Payload,
    /// A referral (`/start` payload, click-to-WhatsApp ad, m.me ref) is one of `values`, or any
    /// when `values` is empty.
    Referral,
    /// One of the tags in `values` is added to the contact.
    TagAdded,
    /// One of the fields in `values` changes on the contact.
    FieldChanged,
}

/// How keywords match a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordMatch {
    /// The whole message is the keyword.
    Exact,
    /// The message contains the keyword as whole words.
    #[default]
    Contains,
    /// The keyword is a regular expression found in the message.
    Regex,
}

/// One trigger of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// What it waits for.
    #[serde(rename = "type")]
    pub kind: TriggerKind,
    /// Keywords, payloads, referral refs, tags or field keys, by kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// How keywords match (keyword triggers only).
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matching: Option<KeywordMatch>,
    /// Higher wins when several triggers match.
    #[serde(default)]
    pub priority: i32,
    /// Only on these channel accounts; empty: on all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channel_accounts: Vec<String>,
}

/// What happened, as triggers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening<'a> {
    /// A conversation opened under the bot.
    NewConversation,
    /// A customer's message with this text.
    Message(&'a str),
    /// A button or quick-reply payload.
    Payload(&'a str),
    /// A referral with this ref (empty when the channel gave none).
    Referral(&'a str),
    /// This tag was added to the contact.
    TagAdded(&'a str),
    /// This field of the contact changed.
    FieldChanged(&'a str),
}

/// A trigger ready to match: its keywords folded or compiled.
#[derive(Debug, Clone)]
pub struct Matcher {
    trigger: Trigger,
    keywords: Keywords,
}

#[derive(Debug, Clone)]
enum Keywords {
    None,
    Folded(Vec<String>),
    Patterns(Vec<Regex>),
}

impl Matcher {
    /// Prepares `trigger`; the error says what is wrong with it (for validation).
    pub fn new(trigger: &Trigger) -> Result<Self, String> {
        let needs_values = !matches!(trigger.kind, TriggerKind::NewConversation | TriggerKind::Referral);
        if needs_values && trigger.values.is_empty() {
            return Err("values: this trigger needs at least one value".to_owned());
        }
        if trigger.values.iter().any(|value| value.trim().is_empty()) {
            return Err("values: a blank value would match everything".to_owned());
        }
        if trigger.values.len() > MAX_TRIGGER_VALUES {
            return Err(format!("values: at most {MAX_TRIGGER_VALUES}"));
        }
        if trigger.kind == TriggerKind::NewConversation && !trigger.values.is_empty() {
            return Err("values: a new_conversation trigger takes none".to_owned());
        }
        if trigger.kind != TriggerKind::Keyword && trigger.matching.is_some() {
            return Err("match: only keyword triggers have it".to_owned());
        }
        let keywords = match (trigger.kind, trigger.matching.unwrap_or_default()) {
            (TriggerKind::Keyword, KeywordMatch::Regex) => Keywords::Patterns(
                trigger
                    .values
                    .iter()
                    .map(|pattern| compile_folded(pattern).map_err(|error| format!("values: {error}")))
                    .collect::<Result<_, _>>()?,
            ),
            (TriggerKind::Keyword, _) => {
                Keywords::Folded(trigger.values.iter().map(|value| folded(value)).collect())
            }
            _ => Keywords::None,
        };
        Ok(Self {
            trigger: trigger.clone(),
            keywords,
        })
    }

    /// The trigger's priority.
    pub fn priority(&self) -> i32 {
        self.trigger.priority
    }

    /// Whether `happening` on `channel_account` starts the flow.
    pub fn matches(&self, happening: Happening<'_>, channel_account: &str) -> bool {
        let accounts = &self.trigger.channel_accounts;
        if !accounts.is_empty() && !accounts.iter().any(|account| account == channel_account) {
            return false;
        }
        let values = &self.trigger.values;
        match (self.trigger.kind, happening) {
            (TriggerKind::NewConversation, Happening::NewConversation) => true,
            (TriggerKind::Keyword, Happening::Message(text)) => self.keyword_in(text),
            (TriggerKind::Payload, Happening::Payload(payload))
            | (TriggerKind::TagAdded, Happening::TagAdded(payload))
            | (TriggerKind::FieldChanged, Happening::FieldChanged(payload)) => {
                values.iter().any(|value| value == payload)
            }
            (TriggerKind::Referral, Happening::Referral(reference)) => {
                values.is_empty() || values.iter().any(|value| value == reference)
            }
            _ => false,
        }
    }

    fn keyword_in(&self, text: &str) -> bool {
        match &self.keywords {
            Keywords::None => false,
            Keywords::Patterns(patterns) => {
                let text = folded(text);
                patterns.iter().any(|pattern| pattern.is_match(&text))
            }
            Keywords::Folded(keywords) => {
                let text = folded(text);
                match self.trigger.matching.unwrap_or_default() {
                    KeywordMatch::Exact => keywords.contains(&text),
                    _ => {
                        let words: Vec<&str> = text
                            .split(|c: char| !c.is_alphanumeric())
                            .filter(|w| !w.is_empty())
                            .collect();
                        keywords.iter().any(|keyword| contains_words(&words, keyword))
                    }
                }
            }
        }
    }
}

/// Whether the keyword's words appear in `words` one after another.
fn contains_words(words: &[&str], keyword: &str) -> bool {
    let wanted: Vec<&str> = keyword
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    !wanted.is_empty()
        && words
            .windows(wanted.len())
            .any(|window| window == wanted.as_slice())
}

/// Compiles a pattern to match folded text: accents dropped from its letters, any case.
pub(crate) fn compile_folded(pattern: &str) -> Result<Regex, String> {
    let bare = crate::answer::without_accents(pattern);
    RegexBuilder::new(&bare)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| format!("{pattern:?} is not a regular expression this runtime takes: {error}"))
}

/// The candidate whose trigger matches with the highest priority; equal priorities go to the
/// first in `candidates`' order. `K` identifies a candidate (a flow's id).
pub fn choose<'a, K: Copy>(
    candidates: impl IntoIterator<Item = (K, &'a Matcher)>,
    happening: Happening<'_>,
    channel_account: &str,
) -> Option<K> {
    let mut best: Option<(K, i32)> = None;
    for (key, matcher) in candidates {
        if matcher.matches(happening, channel_account)
            && best.is_none_or(|(_, priority)| matcher.priority() > priority)
        {
            best = Some((key, matcher.priority()));
        }
    }
    best.map(|(key, _)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(kind: TriggerKind, values: &[&str], matching: Option<KeywordMatch>) -> Trigger {
        Trigger {
            kind,
            values: values.iter().map(|value| (*value).to_owned()).collect(),
            matching,
            priority: 0,
            channel_accounts: Vec::new(),
        }
    }

    fn matcher(kind: TriggerKind, values: &[&str], matching: Option<KeywordMatch>) -> Matcher {
        Matcher::new(&trigger(kind, values, matching)).expect("a valid trigger")
    }

    #[test]
    fn keywords_match_exactly_by_words_or_by_pattern_ignoring_case_and_accents() {
        let exact = matcher(TriggerKind::Keyword, &["Preço"], Some(KeywordMatch::Exact));
        assert!(exact.matches(Happening::Message("  PRECO "), "acc"));
        assert!(!exact.matches(Happening::Message("qual o preço?"), "acc"));

        let contains = matcher(TriggerKind::Keyword, &["falar com atendente", "price"], None);
        assert!(contains.matches(Happening::Message("Quero FALAR com   atendente!"), "acc"));
        assert!(contains.matches(Happening::Message("the price?"), "acc"));
        assert!(
            !contains.matches(Happening::Message("priceless"), "acc"),
            "whole words only"
        );

        let pattern = matcher(
            TriggerKind::Keyword,
            &[r"^pedido\s*#?\d{4,}$"],
            Some(KeywordMatch::Regex),
        );
        assert!(pattern.matches(Happening::Message("Pédido #12345"), "acc"));
        assert!(!pattern.matches(Happening::Message("pedido 12"), "acc"));
        assert!(
            !pattern.matches(Happening::Payload("pedido 12345"), "acc"),
            "a payload is not a message"
        );
    }

    #[test]
    fn other_triggers_match_their_own_happenings() {
        let payload = matcher(TriggerKind::Payload, &["MENU_PRICES"], None);
        assert!(payload.matches(Happening::Payload("MENU_PRICES"), "acc"));
        assert!(
            !payload.matches(Happening::Payload("menu_prices"), "acc"),
            "payloads are exact"
        );
        let any_referral = matcher(TriggerKind::Referral, &[], None);
        assert!(any_referral.matches(Happening::Referral(""), "acc"));
        let one_ad = matcher(TriggerKind::Referral, &["ad_17"], None);
        assert!(one_ad.matches(Happening::Referral("ad_17"), "acc"));
        assert!(!one_ad.matches(Happening::Referral("ad_18"), "acc"));
        let opened = matcher(TriggerKind::NewConversation, &[], None);
        assert!(opened.matches(Happening::NewConversation, "acc"));
        assert!(!opened.matches(Happening::Message("hi"), "acc"));
        let tag = matcher(TriggerKind::TagAdded, &["vip"], None);
        assert!(tag.matches(Happening::TagAdded("vip"), "acc"));
        assert!(!tag.matches(Happening::FieldChanged("vip"), "acc"));
    }

    #[test]
    fn channel_accounts_limit_where_a_trigger_listens() {
        let mut only_whatsapp = trigger(TriggerKind::NewConversation, &[], None);
        only_whatsapp.channel_accounts = vec!["chacc_wa".to_owned()];
        let matcher = Matcher::new(&only_whatsapp).unwrap();
        assert!(matcher.matches(Happening::NewConversation, "chacc_wa"));
        assert!(!matcher.matches(Happening::NewConversation, "chacc_tg"));
    }

    #[test]
    fn the_highest_priority_wins_and_ties_go_to_the_first() {
        let mut low = trigger(TriggerKind::Keyword, &["price"], None);
        low.priority = 1;
        let mut high = low.clone();
        high.priority = 5;
        let (low, high, also_high) = (
            Matcher::new(&low).unwrap(),
            Matcher::new(&high).unwrap(),
            Matcher::new(&high).unwrap(),
        );
        let candidates = [("low", &low), ("high", &high), ("also_high", &also_high)];
        assert_eq!(
            choose(candidates, Happening::Message("price?"), "acc"),
            Some("high")
        );
        assert_eq!(choose(candidates, Happening::Message("hello"), "acc"), None);
    }

    #[test]
    fn bad_triggers_say_what_is_wrong() {
        let cases = [
            (
                trigger(TriggerKind::Keyword, &[], None),
                "values: this trigger needs at least one value",
            ),
            (
                trigger(TriggerKind::Keyword, &["price", " "], Some(KeywordMatch::Regex)),
                "values: a blank value would match everything",
            ),
            (
                trigger(TriggerKind::NewConversation, &["x"], None),
                "values: a new_conversation trigger takes none",
            ),
            (
                trigger(TriggerKind::Payload, &["X"], Some(KeywordMatch::Exact)),
                "match: only keyword triggers have it",
            ),
            (
                trigger(TriggerKind::Keyword, &["(unclosed"], Some(KeywordMatch::Regex)),
                "values: \"(unclosed\" is not a regular expression this runtime takes",
            ),
        ];
        for (trigger, expected) in cases {
            let error = Matcher::new(&trigger).unwrap_err();
            assert!(error.starts_with(expected), "{error}");
        }
    }
}
