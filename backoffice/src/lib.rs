//! Sportello's back office: the municipal use cases and the passes that run beside the rooms —
//! no HTTP server, no media. The edge calls these with a [`BackOffice`](context::BackOffice).
//!
//! Layout:
//! - [`context`]: [`BackOffice`](context::BackOffice) (store, key, mailer, clock, public URL) and its error.
//! - [`booking`]: the citizens' use cases — book, reschedule, cancel, rate — with the one slot
//!   computation ([`booking::offer`]) and the one place booking emails are built and sent
//!   ([`booking::notify`]).
//! - [`links`]: the citizen's join, manage and cancel links and the join claims.
//! - [`token`]: HS256 join tokens and the key file they are signed with; [`secrets`]: random secrets,
//!   their hashes, Argon2id passwords.
//! - [`mail`]: outgoing email (SMTP, or `.eml` files); [`booking_mail`]: the booking emails and `.ics`.
//! - [`reminders`]: the reminder pass, every minute.
//! - [`once`]: work one node does at a time when several share the database (leases by node id).
//! - [`calendar_fetch`]: officials' own calendars in (subscriptions, uploads); [`feeds`]: `.ics` feeds out.
//! - [`webhooks`]: signed webhooks out (Standard Webhooks), retried with backoff from the store's outbox.
//! - [`appio`]: App IO notifications (the citizen's choice, composed messages, the sender following
//!   IO's services API), retried with backoff from the store's outbox.
//! - [`outbox`]: what those two senders share — a pass every second, claimed rows sent in tasks of
//!   their own within a bound in flight, retries after a table of delays, the HTTP client.
//! - [`schedule`]: working patterns and holidays read from the store into the domain's types;
//!   [`convert`]: the other rows the rules take (modes, intervals, the patron's day).
//! - [`documents`], [`retention`], [`private`]: shared files, what is deleted when, private permissions.
//! - [`settings`]: the keys of the administrator's settings and the municipality's identity
//!   ([`settings::Municipality`]); [`crest`]: the uploaded crest, sanitised; [`demo`]: `--demo` sample data.
//! - [`sign_in`]: OpenID Connect sign-in settings, the staff login from a verified directory
//!   account (role and offices from its claims), the key of a logged-in citizen's appointments.
//! - [`clock`], [`time`], [`text`]: the server's "now", Europe/Rome conversions, bilingual messages.
//!
//! Invariants: rules live in `sportello-domain` (this crate does the I/O around them); errors are
//! typed here and mapped to HTTP statuses once, at the edge.

pub mod appio;
pub mod booking;
pub mod booking_mail;
pub mod calendar_fetch;
pub mod clock;
pub mod context;
pub mod convert;
pub mod crest;
pub mod demo;
pub mod desk;
pub mod documents;
pub mod feeds;
pub mod links;
pub mod mail;
pub mod once;
pub mod outbox;
pub mod private;
pub mod recordings;
pub mod reminders;
pub mod retention;
pub mod schedule;
pub mod secrets;
pub mod settings;
pub mod sign_in;
pub mod text;
pub mod time;
pub mod token;
pub mod webhooks;
