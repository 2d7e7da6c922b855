use std::collections::BTreeMap;
use std::sync::Arc;

/// Returns the partition (0-based, below `partitions`) that `key` maps to.
///
/// Stable across processes, platforms and releases: FNV-1a of the key's bytes, then Lamping &
/// Veach's jump consistent hash, so growing `partitions` moves as few keys as possible.
pub fn partition_for(key: &str, partitions: u16) -> u16 {
    if partitions <= 1 {
        return 0;
    }
    let hash = fnv1a_64(key.as_bytes());
    let bucket = jump_consistent_hash(hash, i64::from(partitions));
    // jump_consistent_hash returns a value in [0, partitions), so it fits in u16.
    u16::try_from(bucket).unwrap_or(0)
}

fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

/// Jump consistent hash (<https://arxiv.org/abs/1406.2294>).
fn jump_consistent_hash(mut key: u64, buckets: i64) -> i64 {
    let mut bucket: i64 = -1;
    let mut next: i64 = 0;
    while next < buckets {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let shifted = ((key >> 33) + 1) as f64;
        next = (((bucket + 1) as f64) * ((1_u64 << 31) as f64 / shifted)) as i64;
    }
    bucket
}

/// How many partitions each event family has (the family is an event type's first segment:
/// `inbound`, `contact`, `send`, …): the count `bus.family_partitions` names for it, else
/// `bus.partitions`. Publishers and consumers of one installation must agree on it. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitions {
    default: u16,
    families: Arc<BTreeMap<String, u16>>,
}

impl Partitions {
    /// `default` partitions for every family except those `families` names.
    pub fn new(default: u16, families: BTreeMap<String, u16>) -> Self {
        Self {
            default,
            families: Arc::new(families),
        }
    }

    /// The same count for every family.
    pub fn uniform(count: u16) -> Self {
        Self::new(count, BTreeMap::new())
    }

    /// The partition count of `family` (e.g. `inbound`).
    pub fn of_family(&self, family: &str) -> u16 {
        self.families.get(family).copied().unwrap_or(self.default)
    }

    /// The partition count of the family that `event_type` (or a routing key or binding
    /// pattern, e.g. `inbound.*.status_received`) belongs to: its first segment's.
    pub fn of_event(&self, event_type: &str) -> u16 {
        let family = event_type
            .split_once('.')
            .map_or(event_type, |(family, _)| family);
        self.of_family(family)
    }

    /// The largest count of any family (to look for every queue a family might have).
    pub fn most(&self) -> u16 {
        self.families.values().copied().fold(self.default, u16::max)
    }
}

/// The routing-key suffix of partition `index`, e.g. `p03`.
pub(crate) fn partition_suffix(index: u16) -> String {
    format!("p{index:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_their_own_count_and_the_rest_the_default() {
        let partitions = Partitions::new(8, BTreeMap::from([("inbound".to_owned(), 32)]));
        assert_eq!(partitions.of_family("inbound"), 32);
        assert_eq!(partitions.of_event("inbound.whatsapp.message_received"), 32);
        assert_eq!(partitions.of_event("inbound.*.status_received"), 32);
        assert_eq!(partitions.of_event("contact.message_received"), 8);
        assert_eq!(partitions.of_family("send"), 8);
        assert_eq!(partitions.most(), 32);
        assert_eq!(Partitions::uniform(4).most(), 4);
    }

    #[test]
    fn the_same_key_always_maps_to_the_same_partition() {
        // Pinned values: a change here re-partitions every installation.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let first = partition_for("chacc_1:16505551234", 8);
        for _ in 0..10 {
            assert_eq!(partition_for("chacc_1:16505551234", 8), first);
        }
        assert_eq!(partition_for("anything", 1), 0);
    }

    #[test]
    fn keys_spread_over_all_partitions() {
        let mut counts = [0_u32; 8];
        for index in 0..8_000 {
            counts[usize::from(partition_for(&format!("sender-{index}"), 8))] += 1;
        }
        for count in counts {
            assert!((800..1_200).contains(&count), "uneven spread: {counts:?}");
        }
    }

    #[test]
    fn growing_the_partition_count_moves_few_keys() {
        let moved = (0..10_000)
            .filter(|index| {
                let key = format!("k{index}");
                partition_for(&key, 8) != partition_for(&key, 9)
            })
            .count();
        // Ideal is 1/9 of the keys; a modulo hash would move about 8/9.
        assert!(moved < 1_600, "moved {moved} keys");
    }
}
