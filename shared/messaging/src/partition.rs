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

/// The routing-key suffix of partition `index`, e.g. `p03`.
pub(crate) fn partition_suffix(index: u16) -> String {
    format!("p{index:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
