//! Which partitions a replica consumes: its seat among the live replicas of its component.
//!
//! Membership (who is alive) is kept elsewhere (`switchboard-membership`, PostgreSQL leases);
//! this crate only reads the resulting [`Seat`] and subscribes to the partitions it gives.

use tokio::sync::watch;

/// This replica's place among the live replicas of a component: it consumes partition `p`
/// of every family when `p % members == index`, so each of N replicas holds ⌈P/N⌉ or ⌊P/N⌋
/// of P partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seat {
    /// This replica's position among the live members, sorted by member id (0-based).
    pub index: u32,
    /// How many members are live; 0 when this replica is not one (not joined yet, or its
    /// lease lapsed), and then it holds nothing.
    pub members: u32,
}

impl Seat {
    /// The only replica: it holds every partition.
    pub const ALONE: Self = Self { index: 0, members: 1 };

    /// Not a member: it holds no partition.
    pub const NONE: Self = Self { index: 0, members: 0 };

    /// True when this seat consumes `partition`.
    pub fn holds(self, partition: u16) -> bool {
        self.members > 0 && u32::from(partition) % self.members == self.index
    }

    /// How many of `partitions` partitions this seat consumes.
    pub fn held(self, partitions: u16) -> u16 {
        let count = (0..partitions).filter(|partition| self.holds(*partition)).count();
        u16::try_from(count).unwrap_or(u16::MAX)
    }
}

/// A replica's seat as membership changes.
pub type SeatWatch = watch::Receiver<Seat>;

/// A seat that never changes (one replica, or tests that place replicas by hand).
pub fn fixed_seat(seat: Seat) -> SeatWatch {
    watch::channel(seat).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_split_partitions_evenly_and_completely() {
        for partitions in [1_u16, 2, 7, 8, 16, 256] {
            for members in 1_u32..=9 {
                let seats: Vec<Seat> = (0..members).map(|index| Seat { index, members }).collect();
                let held: Vec<u16> = seats.iter().map(|seat| seat.held(partitions)).collect();
                let (max, min) = (held.iter().max(), held.iter().min());
                assert!(
                    max.zip(min).is_some_and(|(max, min)| max - min <= 1),
                    "{partitions} over {members}: {held:?}"
                );
                for partition in 0..partitions {
                    let holders = seats.iter().filter(|seat| seat.holds(partition)).count();
                    assert_eq!(holders, 1, "partition {partition} of {partitions} over {members}");
                }
            }
        }
        assert_eq!(Seat::NONE.held(8), 0);
        assert_eq!(Seat::ALONE.held(8), 8);
    }
}
