//! Generated protobuf messages and gRPC stubs for Switchboard's `switchboard.*.v1` packages.
//!
//! Generated code only: no hand-written logic lives here. Features `client` and `server` add
//! the tonic stubs; both are off by default so crates that only need message types stay light.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `switchboard.common.v1`: channels, content parts, identities, paging.
pub mod common {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/switchboard.common.v1.rs"));
    }
}

/// `switchboard.events.v1`: the bus envelope and event payloads.
pub mod events {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/switchboard.events.v1.rs"));
    }
}

/// `switchboard.tenancy.v1`: workspaces, API keys, channel accounts.
pub mod tenancy {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/switchboard.tenancy.v1.rs"));
    }
}

/// `switchboard.contacts.v1`: contacts, fields, tags, consent, filters and views.
pub mod contacts {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/switchboard.contacts.v1.rs"));
    }
}

/// `switchboard.routing.v1`: conversations and their history.
pub mod routing {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/switchboard.routing.v1.rs"));
    }
}

/// `switchboard.delivery.v1`: outbound messages, their policy and status.
pub mod delivery {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/switchboard.delivery.v1.rs"));
    }
}

/// `switchboard.ingress.v1`: the ingress admin API (dead letters).
pub mod ingress {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/switchboard.ingress.v1.rs"));
    }
}

/// The encoded `FileDescriptorSet` of every Switchboard proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/switchboard_descriptor.bin"));
