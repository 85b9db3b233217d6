//! The sync itself: [`enroll`], [`sync`] (push, then pull) and [`status`].
//!
//! Invariants (see `shared/notes/sync-lessons.md`):
//! - The outbox is only ever shortened by the server's acknowledgement
//!   (`applied_through`); nothing is dropped after failures. A sync that
//!   fails or is cancelled leaves every unacknowledged entry for next time.
//! - A pulled page and the cursor move together (`Store::apply_prepared`, one
//!   transaction), so a cut link never skips or re-applies a page wrongly.
//! - The store changes only with a whole answer in hand (an acknowledgement,
//!   a page): abandoning a request (cancel, timeout) is always safe. Two
//!   requests overlap the store's work, never each other's effects: the next
//!   pull page is fetched (a read) while one is applied, and the next push
//!   batch is encoded while one is on its way, sent only after its answer
//!   and only if it starts right after what the server acknowledged.

use std::time::Instant;

use serde::Serialize;
use shouhu_protocol::{
    DeviceResponse, EnrollRequest, EnrollResponse, Health, PullResponse, PushRequest, PushResponse,
    PROTOCOL_VERSION,
};
use shouhu_store::{ChangeEntry, PulledChange, Store};
use shouhu_tls::{Fingerprint, Pin};
use uuid::Uuid;

use crate::accounts;
use crate::error::SyncError;
use crate::options::{CancelToken, SyncOptions};
use crate::progress::{RetryNotice, SyncPhase, SyncProgress, SyncReport};
use crate::scope;
use crate::transport::{
    decode, is_loopback, parse_base, Call, Counters, Payload, Retry, Transport, Trust,
};
use crate::wire::{from_wire, into_wire};

/// Store setting: the server address (normalised, no trailing slash).
pub const SETTING_SERVER_URL: &str = "server_url";
/// Store setting: the device credential. The store's copy detection
/// (`Store::open_with_identity`) deletes exactly this key from a copied
/// database, which then has to enroll again.
pub const SETTING_CREDENTIAL: &str = "credential";
/// Store setting: the name given at enrollment.
pub const SETTING_DEVICE_NAME: &str = "device_name";
/// Store setting: when the last sync completed (RFC 3339, UTC).
pub const SETTING_LAST_SYNC: &str = "last_sync";
/// Store setting: the SHA-256 fingerprint of the server's certificate
/// pinned at enrollment (`AB:CD:…`, all 64 digits; empty for a plain-HTTP
/// server on loopback). Every sync accepts that certificate and no other.
pub const SETTING_SERVER_CERT: &str = "server_cert_sha256";

/// Batches in a row that the server answers without taking their first
/// change (or pages that do not move the cursor) before giving up.
const MAX_STALLS: u32 = 3;
/// New device ids one sync may take after `sync.sequence_reused`.
const MAX_ROTATIONS: u32 = 2;

/// Exchange a one-time enrollment code for a credential, and remember the
/// server (address, certificate fingerprint, credential, server id) in the
/// store so that [`sync`] needs no arguments. Uses default options.
///
/// `fingerprint` is the server certificate's SHA-256 fingerprint as the
/// administrator gave it (`shouhu-server enroll` prints it beside the code):
/// required for an `https://` address, where it is the only thing trusted.
/// All 64 hex digits, or only the first 16 or more (see
/// [`shouhu_tls::MIN_PREFIX_DIGITS`]); separators, case and full-width
/// forms do not matter. Either way the store keeps the whole fingerprint of
/// the certificate the server showed, and every sync checks all of it.
/// Plain `http://` is accepted only on loopback (tests), without one.
pub async fn enroll(
    store: &mut Store,
    server_url: &str,
    code: &str,
    fingerprint: Option<&str>,
    device_name: &str,
) -> Result<EnrollResponse, SyncError> {
    enroll_with(
        store,
        server_url,
        code,
        fingerprint,
        device_name,
        &SyncOptions::default(),
    )
    .await
}

/// [`enroll`] with explicit options (timeouts, retries).
///
/// The enrollment request itself is retried only when the server surely did
/// not see it (no connection, 429, 503): the code is one-time, and a second
/// attempt after the server used it would fail with `enroll.invalid_code`.
/// A store that already synced with another server is refused
/// (`sync.server_mismatch`): its cursor means nothing on a different server.
/// A store enrolled before (a revoked laptop handed to an administrator, who
/// gives it a new code) takes a new device id first, keeping its unsent
/// changes, which the next sync sends.
/// A certificate that does not match `fingerprint` is
/// `sync.certificate_mismatch`, before the code is sent.
pub async fn enroll_with(
    store: &mut Store,
    server_url: &str,
    code: &str,
    fingerprint: Option<&str>,
    device_name: &str,
    opts: &SyncOptions,
) -> Result<EnrollResponse, SyncError> {
    let (base, normalised) = parse_base(server_url)?;
    let fingerprint = fingerprint.map(str::trim).filter(|f| !f.is_empty());
    let pin = match (base.scheme(), fingerprint) {
        ("https", Some(f)) => Some(Pin::parse(f).map_err(|_| SyncError::BadFingerprint {
            input: f.chars().take(120).collect(),
        })?),
        ("https", None) => return Err(SyncError::FingerprintRequired),
        (_, None) if is_loopback(&base) => None,
        // Plain HTTP elsewhere; or a fingerprint with http://, which would
        // not be checked: the address was surely meant to be https://.
        _ => return Err(SyncError::HttpsRequired { url: normalised }),
    };
    let trust = match &pin {
        Some(pin) => Trust::Pinned {
            pin: pin.clone(),
            enrolling: true,
        },
        None => Trust::Plain,
    };
    let mut t = Transport::new(base.clone(), None, trust, opts)?;
    let cancel = CancelToken::new();
    let mut quiet = |_: RetryNotice, _: Counters| {};
    let health: Health = decode(
        &t.call(&Call::get("v1/health", Vec::new()), &cancel, &mut quiet)
            .await?,
    )?;
    // The whole fingerprint of the certificate that matched: what is pinned.
    let pinned: Option<Fingerprint> = match &pin {
        None => None,
        Some(Pin::Exact(f)) => Some(*f),
        Some(Pin::Prefix(_)) => {
            let shown = t.presented().ok_or_else(|| SyncError::BadResponse {
                detail: "no certificate was seen".into(),
            })?;
            // From here on only that exact certificate, also for the code.
            t = Transport::new(
                base,
                None,
                Trust::Pinned {
                    pin: Pin::Exact(shown),
                    enrolling: true,
                },
                opts,
            )?;
            Some(shown)
        }
    };
    let mut state = store.sync_state()?;
    if let Some(expected) = state.server_id {
        if expected != health.server_id {
            return Err(SyncError::ServerMismatch {
                expected,
                found: health.server_id,
            });
        }
    }
    // Enrolled before (revoked, say, and handed to an administrator who gave
    // a new code): the server knows the old device id and would refuse it.
    // The laptop takes a new one; its unsent changes move to it and are sent
    // at the next sync (`Store::rotate_device_id`).
    let enrolled_before = store
        .setting(SETTING_CREDENTIAL)?
        .is_some_and(|c| !c.is_empty());
    if enrolled_before {
        store.rotate_device_id()?;
        state = store.sync_state()?;
    }
    let req = EnrollRequest {
        protocol: PROTOCOL_VERSION,
        code: code.trim().to_string(),
        device_id: state.device_id,
        name: device_name.trim().to_string(),
    };
    let body = Payload::json(&req, opts.gzip_above)?;
    let resp: EnrollResponse = decode(
        &t.call(
            &Call::post("v1/enroll", body, Retry::UnsentOnly),
            &cancel,
            &mut quiet,
        )
        .await?,
    )?;
    if resp.device_id != state.device_id {
        return Err(SyncError::BadResponse {
            detail: format!(
                "enrolled device {} instead of {}",
                resp.device_id, state.device_id
            ),
        });
    }
    // The credential last: a store with an address but no credential is
    // simply "not enrolled".
    store.set_setting(SETTING_SERVER_URL, &normalised)?;
    store.set_setting(
        SETTING_SERVER_CERT,
        &pinned.map(|f| f.to_string()).unwrap_or_default(),
    )?;
    store.set_server_id(resp.server_id)?;
    store.set_setting(SETTING_DEVICE_NAME, &req.name)?;
    scope::store_scope(store, &resp.scope)?;
    store.set_setting(SETTING_CREDENTIAL, &resp.credential)?;
    Ok(resp)
}

/// A transport to the enrolled server, with its credential and pin.
fn stored_transport(store: &Store, opts: &SyncOptions) -> Result<Transport, SyncError> {
    let (Some(url), Some(credential)) = (
        store.setting(SETTING_SERVER_URL)?,
        store.setting(SETTING_CREDENTIAL)?,
    ) else {
        return Err(SyncError::NotEnrolled);
    };
    let (base, _) = parse_base(&url)?;
    let pin = store.setting(SETTING_SERVER_CERT)?;
    let trust = stored_trust(&base, pin.as_deref().filter(|p| !p.is_empty()))?;
    Transport::new(base, Some(credential), trust, opts)
}

/// Registers a notes reader's public key with the server
/// (`POST /v1/users/{id}/reader-key`, base64 of 32 bytes), for a counselor or
/// supervisor logged in on this device; the server's record of the user
/// comes back. The server keeps one key per (user, device): the same key
/// again is harmless, and a reader's key from another device joins the set.
/// A server from before key sets keeps one key per user and refuses another
/// with [`SyncError::ReaderKeyExists`] (nothing is retried).
pub async fn register_reader_key(
    store: &mut Store,
    user_id: Uuid,
    public_key: &str,
    opts: &SyncOptions,
    cancel: &CancelToken,
) -> Result<shouhu_protocol::UserRecord, SyncError> {
    cancel.check()?;
    let mut t = stored_transport(store, opts)?;
    let req = shouhu_protocol::ReaderKeyRequest {
        protocol: PROTOCOL_VERSION,
        public_key: public_key.to_string(),
    };
    let call = Call::post(
        format!("v1/users/{user_id}/reader-key"),
        Payload::json(&req, opts.gzip_above)?,
        Retry::Always,
    );
    let body = t.call(&call, cancel, &mut |_, _| {}).await?;
    decode(&body)
}

/// Sends a password the user changed on this device
/// (`POST /v1/users/{id}/password`, see
/// [`shouhu_protocol::PasswordChangeRequest`]); the server's record of the
/// user comes back. The server's refusals are not retried: `user.password_stale`
/// (its credential changed since: an administrator's reset or another
/// device's change stays), `user.password_proof_invalid`,
/// `user.password_change_unavailable`, `user.removed`, `user.out_of_scope`.
/// A retried request that got through the first time answers
/// `user.password_stale` too; the users fetched next show the change.
pub async fn send_password_change(
    store: &mut Store,
    user_id: Uuid,
    req: &shouhu_protocol::PasswordChangeRequest,
    opts: &SyncOptions,
    cancel: &CancelToken,
) -> Result<shouhu_protocol::UserRecord, SyncError> {
    cancel.check()?;
    let mut t = stored_transport(store, opts)?;
    let call = Call::post(
        format!("v1/users/{user_id}/password"),
        Payload::json(req, opts.gzip_above)?,
        Retry::Always,
    );
    let body = t.call(&call, cancel, &mut |_, _| {}).await?;
    decode(&body)
}

/// How a sync trusts the stored server: its pinned certificate for
/// `https://`, nothing for `http://` on loopback, and otherwise refuse
/// before connecting (a store enrolled before pinning enrolls again).
fn stored_trust(base: &reqwest::Url, pin: Option<&str>) -> Result<Trust, SyncError> {
    match (base.scheme(), pin) {
        ("https", Some(p)) => Ok(Trust::Pinned {
            pin: Pin::Exact(Fingerprint::parse(p).map_err(|_| SyncError::FingerprintRequired)?),
            enrolling: false,
        }),
        ("https", None) => Err(SyncError::FingerprintRequired),
        _ if is_loopback(base) => Ok(Trust::Plain),
        _ => Err(SyncError::HttpsRequired {
            url: base.as_str().trim_end_matches('/').to_string(),
        }),
    }
}

/// Where this store stands with its server (no network).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncStatus {
    /// An address and a credential are stored.
    pub enrolled: bool,
    pub server_url: Option<String>,
    pub server_id: Option<Uuid>,
    pub device_id: Uuid,
    pub device_name: Option<String>,
    /// The server certificate's SHA-256 fingerprint pinned at enrollment
    /// (`AB:CD:…`), for a person to compare with the administrator's.
    pub server_fingerprint: Option<String>,
    /// Local changes the server has not acknowledged.
    pub pending: i64,
    /// The server sequence pulled up to.
    pub pull_cursor: i64,
    /// When the last sync completed (RFC 3339, UTC).
    pub last_sync: Option<String>,
    /// The schools this device holds, as the server last said (enrollment,
    /// then every sync); `None` from before scopes were kept.
    pub scope: Option<shouhu_protocol::Scope>,
}

pub fn status(store: &Store) -> Result<SyncStatus, SyncError> {
    let state = store.sync_state()?;
    let server_url = store.setting(SETTING_SERVER_URL)?;
    let credential = store.setting(SETTING_CREDENTIAL)?;
    Ok(SyncStatus {
        enrolled: server_url.is_some() && credential.is_some(),
        server_url,
        server_id: state.server_id,
        device_id: state.device_id,
        device_name: store.setting(SETTING_DEVICE_NAME)?,
        server_fingerprint: store
            .setting(SETTING_SERVER_CERT)?
            .filter(|f| !f.is_empty()),
        pending: store.pending_count()?,
        pull_cursor: state.pull_cursor,
        last_sync: store.setting(SETTING_LAST_SYNC)?,
        scope: scope::stored_scope(store)?,
    })
}

/// Push this device's outbox, then pull everything new in its scope, with
/// the server and credential saved by [`enroll`].
///
/// `progress` is called at the start of each phase, after each request and
/// before each retry wait. `cancel` stops the sync at the next check
/// ([`SyncError::Cancelled`]); nothing is lost.
pub async fn sync(
    store: &mut Store,
    opts: &SyncOptions,
    progress: &mut (dyn FnMut(SyncProgress) + Send),
    cancel: &CancelToken,
) -> Result<SyncReport, SyncError> {
    let (report, error) = sync_reporting(store, opts, progress, cancel).await;
    match error {
        None => Ok(report),
        Some(e) => Err(e),
    }
}

/// [`sync`], keeping what a failed sync did: the report comes back with the
/// error too. A push blocked by the server (`push.forbidden`,
/// `push.unknown_user`, `sync.out_of_scope`) still pulls and fetches the
/// users, which the app needs to fix the cause (the readers of a note that
/// must be sealed, say).
pub async fn sync_reporting(
    store: &mut Store,
    opts: &SyncOptions,
    progress: &mut (dyn FnMut(SyncProgress) + Send),
    cancel: &CancelToken,
) -> (SyncReport, Option<SyncError>) {
    let started = Instant::now();
    let mut report = SyncReport::default();
    match sync_inner(store, opts, progress, cancel, started).await {
        Ok(r) => (r, None),
        Err((e, partial)) => {
            if let Some(r) = partial {
                report = r;
            }
            report.duration = started.elapsed();
            (report, Some(e))
        }
    }
}

async fn sync_inner(
    store: &mut Store,
    opts: &SyncOptions,
    progress: &mut (dyn FnMut(SyncProgress) + Send),
    cancel: &CancelToken,
    started: Instant,
) -> Result<SyncReport, (SyncError, Option<SyncReport>)> {
    let fail = |e: SyncError| (e, None);
    cancel.check().map_err(fail)?;
    // One client (one connection pool, one TLS session) for the whole run;
    // requests beside each other share it (`Transport::fork`).
    let mut run = Run {
        t: stored_transport(store, opts).map_err(fail)?,
        store,
        opts,
        cancel,
        progress,
        report: SyncReport::default(),
        phase: SyncPhase::Push,
        done: 0,
        total: 0,
    };
    let result = run.run().await;
    let c = run.t.counters;
    let mut report = run.report;
    report.bytes_up = c.up;
    report.bytes_down = c.down;
    report.retries = c.retries;
    report.duration = started.elapsed();
    match result {
        Ok(()) => Ok(report),
        Err(e) => Err((e, Some(report))),
    }
}

struct Run<'a> {
    store: &'a mut Store,
    t: Transport,
    opts: &'a SyncOptions,
    cancel: &'a CancelToken,
    progress: &'a mut (dyn FnMut(SyncProgress) + Send),
    report: SyncReport,
    phase: SyncPhase,
    done: u64,
    total: u64,
}

impl Run<'_> {
    async fn run(&mut self) -> Result<(), SyncError> {
        let health: Health = decode(&self.request(&Call::get("v1/health", Vec::new())).await?)?;
        let state = self.store.sync_state()?;
        match state.server_id {
            Some(expected) if expected != health.server_id => {
                return Err(SyncError::ServerMismatch {
                    expected,
                    found: health.server_id,
                })
            }
            Some(_) => {}
            None => self.store.set_server_id(health.server_id)?,
        }
        // The scope the server has for this device now (an admin may have
        // changed it): kept for the app, a new school pulled from the start.
        let device = self.device().await?;
        // An out-of-scope change (or one its user may not make) blocks the
        // outbox at that change until an administrator acts (nothing is dropped); the device still pulls,
        // so it keeps receiving everyone else's work meanwhile.
        let blocked = match self.push().await {
            Ok(()) => None,
            Err(
                e @ (SyncError::OutOfScope { .. }
                | SyncError::PushForbidden { .. }
                | SyncError::UnknownUser { .. }),
            ) => Some(e),
            Err(e) => return Err(e),
        };
        // Pushing first: a server restored from an old backup needs this
        // device's changes most of all. Pulling from it would skip the
        // numbers it hands out again below our cursor.
        let cursor = self.store.sync_state()?.pull_cursor;
        if health.head < cursor {
            return Err(SyncError::ServerRewound {
                head: health.head,
                cursor,
            });
        }
        self.pull(health.head).await?;
        // Audit goes up even past a blocked outbox (it must not wait for an
        // administrator); the blocked push stays the error to report.
        let accounts = self.accounts().await;
        // A school that left the scope goes once none of this device's
        // changes for it wait to be sent (those made before it left were
        // just pushed; later ones are refused and stay).
        if let Some(device) = &device {
            self.purge_left(device)?;
        }
        if let Some(e) = blocked {
            return Err(e);
        }
        accounts?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.store.set_setting(SETTING_LAST_SYNC, &now)?;
        Ok(())
    }

    /// `GET /v1/device` ([`crate::scope`]): store the scope, and pull a
    /// school that joined it from the beginning.
    async fn device(&mut self) -> Result<Option<DeviceResponse>, SyncError> {
        let mut on_retry = retry_reporter(&mut *self.progress, self.phase, self.done, self.total);
        let device = scope::fetch_device(&mut self.t, self.cancel, &mut on_retry).await?;
        if let Some(d) = &device {
            self.report.schools_added = scope::learn_scope(self.store, &d.scope)?;
            self.report.scope = Some(d.scope.clone());
        }
        Ok(device)
    }

    /// Remove the schools that left the scope and are still here, unless
    /// this device has unsent changes for them.
    fn purge_left(&mut self, device: &DeviceResponse) -> Result<(), SyncError> {
        for left in &device.left_schools {
            // Done once per departure (a school added back and taken out
            // again leaves at a new instant); looking for its rows reads
            // tables without a school index.
            let done_key = format!("scope.purged.{}", left.school_id);
            if self.store.setting(&done_key)?.as_deref() == Some(left.left_at.as_str()) {
                continue;
            }
            if device.scope.schools.contains(&left.school_id) {
                continue;
            }
            if !self.store.holds_school(left.school_id)? {
                self.store.set_setting(&done_key, &left.left_at)?;
                continue;
            }
            let pending = self.store.pending_for_school(left.school_id)?;
            if pending > 0 {
                let name = self
                    .store
                    .get::<shouhu_core::School>(left.school_id)?
                    .map(|s| s.body.name);
                self.report.schools_kept.push(scope::KeptSchool {
                    school_id: left.school_id,
                    name,
                    pending,
                });
                continue;
            }
            let purge = self.store.purge_school(left.school_id)?;
            self.store.set_setting(&done_key, &left.left_at)?;
            self.report.schools_removed.push(purge);
        }
        Ok(())
    }

    /// Audit up, users down ([`crate::accounts`]).
    async fn accounts(&mut self) -> Result<(), SyncError> {
        let mut on_retry = retry_reporter(&mut *self.progress, self.phase, self.done, self.total);
        self.report.audit_sent = accounts::upload_audit(
            &mut self.t,
            self.store,
            self.opts,
            self.cancel,
            &mut on_retry,
        )
        .await?;
        self.report.users = accounts::fetch_users(&mut self.t, self.cancel, &mut on_retry).await?;
        drop(on_retry);
        // The last progress carries the whole sync's bytes.
        self.emit();
        Ok(())
    }

    fn emit(&mut self) {
        let c = self.t.counters;
        (self.progress)(SyncProgress {
            phase: self.phase,
            done: self.done,
            total: self.total,
            bytes_sent: c.up,
            bytes_received: c.down,
            retry: None,
        });
    }

    /// One call with retries; retry waits are reported as progress.
    async fn request(&mut self, call: &Call) -> Result<Vec<u8>, SyncError> {
        let mut on_retry = retry_reporter(&mut *self.progress, self.phase, self.done, self.total);
        self.t.call(call, self.cancel, &mut on_retry).await
    }

    /// Read the outbox entries after `after` (at most `limit`) and encode
    /// the push request; `None` when there are none.
    fn prepare_push(&self, after: i64, limit: usize) -> Result<Option<Prepared>, SyncError> {
        let entries: Vec<ChangeEntry> = self.store.local_changes_after(after, limit)?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(None);
        };
        let (first, last) = (first.seq, last.seq);
        let req = PushRequest {
            protocol: PROTOCOL_VERSION,
            changes: entries.into_iter().map(into_wire).collect(),
        };
        let call = Call::post(
            "v1/push",
            Payload::json(&req, self.opts.gzip_above)?,
            Retry::Always,
        );
        Ok(Some(Prepared {
            after,
            limit,
            first,
            last,
            call,
        }))
    }

    async fn push(&mut self) -> Result<(), SyncError> {
        self.phase = SyncPhase::Push;
        self.done = 0;
        self.total = u64::try_from(self.store.pending_count()?).unwrap_or(0);
        self.emit();
        let mut batch = self.opts.push_batch();
        // Set when the server holds less of this device than the store's
        // acknowledgement says (the server was restored from a backup): the
        // entries from here on are sent again, though acknowledged.
        let mut resend_from: Option<i64> = None;
        // The next batch, encoded while the previous one was on its way and
        // being applied (the common case: the server takes every batch
        // whole). Used only if it starts right after what the server then
        // acknowledged; the batches themselves still go one at a time, in
        // order.
        let mut prepared: Option<Prepared> = None;
        let mut stalls = 0;
        let mut rotations = 0;
        // Set after a refused batch: send only this many (the changes before
        // the refused one).
        let mut prefix: Option<usize> = None;
        loop {
            self.cancel.check()?;
            let after = match resend_from {
                Some(from) => from - 1,
                None => self.store.sync_state()?.acked_seq,
            };
            let limit = prefix.take().unwrap_or(batch);
            let next = match prepared.take() {
                Some(p) if resend_from.is_none() && p.after == after && p.limit == limit => Some(p),
                _ => self.prepare_push(after, limit)?,
            };
            let Some(Prepared {
                first, last, call, ..
            }) = next
            else {
                return Ok(());
            };
            let in_flight = self.start(call, |body| decode::<PushResponse>(&body));
            if resend_from.is_none() {
                prepared = self.prepare_push(last, batch)?;
            }
            let resp: PushResponse = match self.finish(in_flight).await {
                Ok(resp) => resp,
                Err(e) if e.server_code() == Some("sync.sequence_reused") => {
                    if rotations >= MAX_ROTATIONS {
                        return Err(e);
                    }
                    rotations += 1;
                    prepared = None;
                    self.rotate().await?;
                    resend_from = None;
                    stalls = 0;
                    continue;
                }
                // The server refuses a whole batch for one change (out of
                // scope, or its user may not make it): what comes before
                // that change is sent on its own, so it is not held up
                // behind it. The refused change then heads the next batch
                // and is the error to report.
                Err(e) if refused_at(&e).is_some_and(|n| n > first && n <= last) => {
                    prefix = refused_at(&e).map(|n| usize::try_from(n - first).unwrap_or(1));
                    prepared = None;
                    continue;
                }
                Err(e)
                    if batch > 1
                        && matches!(
                            e.server_code(),
                            Some("request.too_large" | "request.batch_too_large")
                        ) =>
                {
                    batch = (batch / 2).max(1);
                    prepared = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let before = self.store.sync_state()?.acked_seq;
            self.store.ack_through(resp.applied_through)?;
            let acked = self.store.sync_state()?.acked_seq;
            let newly = u64::try_from(acked - before).unwrap_or(0);
            self.report.pushed += newly;
            self.report.conflicts += resp.conflicts as u64;
            self.done += newly;
            // Entries written during the sync are sent too.
            self.total = self.total.max(self.done);
            self.emit();
            if resp.applied_through >= first {
                stalls = 0;
            } else {
                stalls += 1;
                if stalls >= MAX_STALLS {
                    return Err(SyncError::NoProgress {
                        phase: "push",
                        at: resp.applied_through,
                    });
                }
            }
            resend_from = (resp.applied_through < acked).then_some(resp.applied_through + 1);
        }
    }

    /// Run `call` on a task of its own (with the usual retries), and `then`
    /// on its answer there too, while this task goes on with other work.
    /// The store is never touched by that task.
    fn start<T, F>(&self, call: Call, then: F) -> InFlight<T>
    where
        T: Send + 'static,
        F: FnOnce(Vec<u8>) -> Result<T, SyncError> + Send + 'static,
    {
        let mut t = self.t.fork();
        let cancel = self.cancel.clone();
        let (tx, notices) = tokio::sync::mpsc::unbounded_channel();
        let handle = tokio::spawn(async move {
            let mut on_retry = |n: RetryNotice, c: Counters| {
                let _ = tx.send((n, c));
            };
            let r = t.call(&call, &cancel, &mut on_retry).await.and_then(then);
            (r, t.counters)
        });
        InFlight { handle, notices }
    }

    /// Wait for a request started with [`Run::start`], reporting its retry
    /// waits as progress; its bytes and retries count in this sync's.
    async fn finish<T>(&mut self, mut f: InFlight<T>) -> Result<T, SyncError> {
        loop {
            tokio::select! {
                Some((notice, c)) = f.notices.recv() => self.retry_notice(notice, c),
                joined = &mut f.handle => {
                    while let Ok((notice, c)) = f.notices.try_recv() {
                        self.retry_notice(notice, c);
                    }
                    let (r, c) = joined.map_err(|e| SyncError::Network {
                        detail: format!("the request task ended: {e}"),
                    })?;
                    self.t.counters.add(c);
                    return r;
                }
            }
        }
    }

    fn retry_notice(&mut self, notice: RetryNotice, c: Counters) {
        let mut total = self.t.counters;
        total.add(c);
        (self.progress)(SyncProgress {
            phase: self.phase,
            done: self.done,
            total: self.total,
            bytes_sent: total.up,
            bytes_received: total.down,
            retry: Some(notice),
        });
    }

    /// The server saw this database reuse sequence numbers (restored from a
    /// backup): take a new device id (unacknowledged entries move to it,
    /// renumbered from 1) and tell the server, which gives the credential
    /// to the new id.
    async fn rotate(&mut self) -> Result<(), SyncError> {
        let new = self.store.rotate_device_id()?;
        self.report.new_device_id = Some(new);
        let body = Payload::json(
            &serde_json::json!({ "protocol": PROTOCOL_VERSION, "new_device_id": new }),
            self.opts.gzip_above,
        )?;
        match self
            .request(&Call::post("v1/device/rotate", body, Retry::Always))
            .await
        {
            Ok(_) => Ok(()),
            // "The new device id is already known": an earlier attempt whose
            // answer was lost did it. If not, the next push says so again and
            // the bounded rotation count ends it.
            Err(e) if e.server_code() == Some("request.invalid") => Ok(()),
            // If the server never heard of the new id, the next sync pushes
            // under the old one, hits the reuse again and rotates again.
            Err(e) => Err(e),
        }
    }

    /// Fetch the pull page after `cursor` on its own task, decoded there.
    fn fetch_page(&self, cursor: i64, limit: usize) -> InFlight<Page> {
        let call = Call::get(
            "v1/pull",
            vec![("after", cursor.to_string()), ("limit", limit.to_string())],
        );
        self.start(call, |body| {
            let page: PullResponse = decode(&body)?;
            drop(body);
            // The work on each change that needs no database happens here,
            // on this task, not on the thread that writes the store.
            let entries = page
                .changes
                .into_iter()
                .map(|c| PulledChange::prepare(from_wire(c)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page {
                entries,
                next_after: page.next_after,
                head: page.head,
            })
        })
    }

    async fn pull(&mut self, head: i64) -> Result<(), SyncError> {
        let start = self.store.sync_state()?.pull_cursor;
        let mut cursor = start;
        self.phase = SyncPhase::Pull;
        self.done = 0;
        self.total = u64::try_from(head - start).unwrap_or(0);
        self.emit();
        let limit = self.opts.pull_page();
        let mut stalls = 0;
        let mut next = Some(self.fetch_page(cursor, limit));
        while let Some(fetching) = next.take() {
            self.cancel.check()?;
            let page = self.finish(fetching).await?;
            if page.next_after < cursor {
                return Err(SyncError::ServerRewound {
                    head: page.head,
                    cursor,
                });
            }
            if page.next_after > page.head {
                return Err(SyncError::BadResponse {
                    detail: format!(
                        "pull cursor {} beyond the head {}",
                        page.next_after, page.head
                    ),
                });
            }
            let more = page.next_after < page.head;
            // Ask for the next page before applying this one: the server
            // reads and sends it, and another thread decodes it, while this
            // one writes. Pages are still applied one by one, in order, each
            // with its cursor.
            if more {
                next = Some(self.fetch_page(page.next_after, limit));
            }
            let applied = self.store.apply_prepared(&page.entries, page.next_after)?;
            self.report.pulled += applied.applied as u64;
            self.report.fields_kept += applied.fields_kept as u64;
            self.total = self
                .total
                .max(u64::try_from(page.head - start).unwrap_or(0));
            self.done = u64::try_from(page.next_after - start).unwrap_or(0);
            self.emit();
            if !more {
                return Ok(());
            }
            if page.next_after == cursor {
                stalls += 1;
                if stalls >= MAX_STALLS {
                    return Err(SyncError::NoProgress {
                        phase: "pull",
                        at: cursor,
                    });
                }
            } else {
                stalls = 0;
            }
            cursor = page.next_after;
        }
        Ok(())
    }
}

/// The sequence number of the change a push was refused for (scope or
/// role), as the server names it in the error's details.
fn refused_at(e: &SyncError) -> Option<i64> {
    match e {
        SyncError::OutOfScope { details }
        | SyncError::PushForbidden { details }
        | SyncError::UnknownUser { details } => details.get("seq").and_then(|v| v.as_i64()),
        _ => None,
    }
}

/// An encoded push batch: the entries after `after` (at most `limit`),
/// sequences `first..=last`.
struct Prepared {
    after: i64,
    limit: usize,
    first: i64,
    last: i64,
    call: Call,
}

/// A decoded pull page.
struct Page {
    entries: Vec<PulledChange>,
    next_after: i64,
    head: i64,
}

/// A request running on its own task ([`Run::start`]). Dropping it (an
/// error or a cancel elsewhere) aborts the request.
struct InFlight<T> {
    handle: tokio::task::JoinHandle<(Result<T, SyncError>, Counters)>,
    notices: tokio::sync::mpsc::UnboundedReceiver<(RetryNotice, Counters)>,
}

impl<T> Drop for InFlight<T> {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Reports a retry's wait as progress of the phase under way (`done` of
/// `total`, the bytes so far), for the one-off requests of a sync.
fn retry_reporter<'p>(
    progress: &'p mut (dyn FnMut(SyncProgress) + Send),
    phase: SyncPhase,
    done: u64,
    total: u64,
) -> impl FnMut(RetryNotice, Counters) + 'p {
    move |notice: RetryNotice, c: Counters| {
        progress(SyncProgress {
            phase,
            done,
            total,
            bytes_sent: c.up,
            bytes_received: c.down,
            retry: Some(notice),
        })
    }
}
