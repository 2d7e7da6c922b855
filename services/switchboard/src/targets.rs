use std::collections::BTreeSet;
use std::fmt;

/// A component the binary can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Workspaces, API keys and channel accounts (`tenancy`).
    Tenancy,
}

impl Target {
    /// Every component, in start order.
    pub const ALL: [Target; 1] = [Target::Tenancy];

    /// The kebab-case name used by `--target`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tenancy => "tenancy",
        }
    }

    /// Returns true when the component keeps state in PostgreSQL.
    pub fn needs_database(self) -> bool {
        match self {
            Self::Tenancy => true,
        }
    }

    /// Returns true when the component uses RabbitMQ.
    pub fn needs_bus(self) -> bool {
        match self {
            Self::Tenancy => true,
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
            let target = Target::ALL
                .into_iter()
                .find(|target| target.name() == value)
                .ok_or_else(|| {
                    let known: Vec<&str> = std::iter::once("all")
                        .chain(Target::ALL.map(Target::name))
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

    /// Returns true when any enabled target needs PostgreSQL.
    pub fn need_database(&self) -> bool {
        self.iter().any(Target::needs_database)
    }

    /// Returns true when any enabled target needs RabbitMQ.
    pub fn need_bus(&self) -> bool {
        self.iter().any(Target::needs_bus)
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
            error.contains("unknown target \"contactz\"") && error.contains("tenancy"),
            "{error}"
        );
        assert!(Targets::parse(&[]).is_err());
    }
}
