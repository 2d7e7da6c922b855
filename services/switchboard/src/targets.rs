use std::collections::BTreeSet;
use std::fmt;

use switchboard_domain::Channel;

/// A component the binary can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Workspaces, API keys and channel accounts (`tenancy`).
    Tenancy,
    /// Identity resolution and the contacts API (`contacts`).
    Contacts,
    /// Conversations and message history (`routing`).
    Routing,
    /// Outbound messages: the Send API, rate limits, retries, receipts (`delivery`).
    Delivery,
    /// Provider webhooks of every channel (`ingress`) or of one (`ingress-<channel>`).
    Ingress(Option<Channel>),
}

impl Target {
    /// Every component, in start order (`all` runs these; per-channel ingress is for pods).
    pub const ALL: [Target; 5] = [
        Target::Tenancy,
        Target::Contacts,
        Target::Routing,
        Target::Delivery,
        Target::Ingress(None),
    ];

    /// Every name `--target` accepts besides `all`.
    pub fn known() -> Vec<Target> {
        let mut known = Self::ALL.to_vec();
        known.extend(switchboard_ingress::WEBHOOK_CHANNELS.map(|channel| Target::Ingress(Some(channel))));
        known.push(Target::Ingress(Some(Channel::Webchat)));
        known
    }

    /// The kebab-case name used by `--target`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tenancy => "tenancy",
            Self::Contacts => "contacts",
            Self::Routing => "routing",
            Self::Delivery => "delivery",
            Self::Ingress(None) => "ingress",
            Self::Ingress(Some(channel)) => match channel {
                Channel::Whatsapp => "ingress-whatsapp",
                Channel::Messenger => "ingress-messenger",
                Channel::Instagram => "ingress-instagram",
                Channel::Telegram => "ingress-telegram",
                Channel::Sms => "ingress-sms",
                Channel::Email => "ingress-email",
                Channel::Webchat => "ingress-webchat",
            },
        }
    }
}

/// The set of enabled targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    set: BTreeSet<Target>,
    all: bool,
}

impl Targets {
    /// Parses `--target` values (`all` expands to every component).
    pub fn parse(values: &[String]) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        let mut all = false;
        for value in values
            .iter()
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
        {
            if value == "all" {
                all = true;
                set.extend(Target::ALL);
                continue;
            }
            let target = Target::known()
                .into_iter()
                .find(|target| target.name() == value)
                .ok_or_else(|| {
                    let known: Vec<&str> = std::iter::once("all")
                        .chain(Target::known().into_iter().map(Target::name))
                        .collect();
                    format!("unknown target {value:?}; known targets: {}", known.join(", "))
                })?;
            set.insert(target);
        }
        if set.is_empty() {
            return Err("no target given; use --target all or a component name".to_owned());
        }
        Ok(Self { set, all })
    }

    /// Returns true for `--target all` (the monolith: migrates at start by default).
    pub fn is_all(&self) -> bool {
        self.all
    }

    /// Returns true when `target` is enabled.
    pub fn contains(&self, target: Target) -> bool {
        self.set.contains(&target)
    }

    /// The enabled targets in start order.
    pub fn iter(&self) -> impl Iterator<Item = Target> + '_ {
        self.set.iter().copied()
    }

    /// The channels whose webhooks this process serves (empty without an ingress target).
    pub fn ingress_channels(&self) -> Vec<Channel> {
        let mut channels: Vec<Channel> = Vec::new();
        for target in self.iter() {
            match target {
                Target::Ingress(None) => {
                    channels.extend(switchboard_ingress::WEBHOOK_CHANNELS);
                    channels.push(Channel::Webchat);
                }
                Target::Ingress(Some(channel)) => channels.push(channel),
                Target::Tenancy | Target::Contacts | Target::Routing | Target::Delivery => {}
            }
        }
        channels.sort();
        channels.dedup();
        channels
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Target::name).collect();
        if self.all {
            write!(f, "all ({})", names.join(", "))
        } else {
            f.write_str(&names.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_expand() {
        let all = Targets::parse(&["all".to_owned()]).unwrap();
        assert!(all.is_all() && all.contains(Target::Tenancy));
        let one = Targets::parse(&["tenancy".to_owned()]).unwrap();
        assert!(!one.is_all());
        let error = Targets::parse(&["contactz".to_owned()]).unwrap_err();
        assert!(
            Targets::parse(&["contacts".to_owned()])
                .unwrap()
                .contains(Target::Contacts)
        );
        assert!(
            error.contains("unknown target \"contactz\"") && error.contains("tenancy"),
            "{error}"
        );
        assert!(Targets::parse(&[]).is_err());
        let sms = Targets::parse(&["ingress-sms".to_owned(), "ingress-email".to_owned()]).unwrap();
        assert_eq!(sms.ingress_channels(), vec![Channel::Sms, Channel::Email]);
        assert_eq!(all.ingress_channels().len(), 7);
        let webchat =
            Targets::parse(&["ingress-webchat".to_owned()]).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(webchat.ingress_channels(), vec![Channel::Webchat]);
    }
}
