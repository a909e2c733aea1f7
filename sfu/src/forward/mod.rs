//! The pure forwarding core: which packet goes to whom, with what header, and when to ask a
//! publisher for a keyframe.
//!
//! Architecture invariant: no I/O, no `rtc` types, no clock reads. Time is always an `Instant`
//! parameter, so every rule here is tested with simulated time; payloads are only ever inspected
//! through bounds-checked parsers ([`is_vp8_keyframe`]). The transport engine feeds packets in and
//! sends what comes out.
//!
//! - [`keys`]: the identifiers of tracks, subscribers and downtracks.
//! - [`router`]: the per-packet fan-out ([`Router::route`]) and subscription bookkeeping.
//! - [`munger`]: one downtrack's sequence/timestamp rewriting, hiding source switches and drops.
//! - [`keyframe`]: throttling of upstream keyframe requests (PLI), without losing any.
//! - [`vp8`]: keyframe detection from the VP8 payload descriptor.
//! - [`queue`]: the lossy per-subscriber queue and its pacer.
//! - [`extmap`]: header-extension id remapping between a publisher's and a subscriber's leg.
//! - [`program`]: program feeds — which source feeds a broadcast output, switched at keyframes.
//! - [`speaker`]: the room's dominant speaker, from RFC 6464 audio levels.
//! - [`history`]: retransmission history per track, and what each downtrack sent, to answer NACKs.
//!
//! The hot path allocates nothing once warm: [`Router::route`] appends to a caller-owned `Vec`,
//! mungers use fixed-size state, queues grow to the depth they reach and stay there.

pub mod extmap;
pub mod history;
pub mod keyframe;
pub mod keys;
pub mod munger;
pub mod program;
pub mod queue;
pub mod router;
pub mod speaker;
pub mod vp8;

pub use extmap::ExtensionMap;
pub use history::{History, Sent, SentLog};
pub use keyframe::{DEFAULT_KEYFRAME_INTERVAL, KeyframeThrottle};
pub use keys::{DownTrackKey, SubscriberKey, TrackKey};
pub use munger::RtpMunger;
pub use program::{Accept, ProgramSwitch};
pub use queue::{LossyQueue, Pacer};
pub use router::{Forward, Router, RouterConfig, RtpMeta};
pub use speaker::{ActiveSpeakerDetector, SpeakerConfig};
pub use vp8::is_vp8_keyframe;
