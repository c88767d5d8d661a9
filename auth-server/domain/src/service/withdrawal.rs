//! Withdrawing a prompt (issue 15): when a login is over — answered on
//! one device or by a code, superseded by a newer login, or expired — every
//! other device it was pushed to gets a signed withdrawal, so the prompt
//! leaves the citizen's second phone and the browser closes its
//! notification. Challenge and withdrawal share the login's RFC 8030
//! `Topic`: a push service holding the challenge for a phone that is
//! offline replaces it with the withdrawal.

use jsonwebtoken::{Algorithm, Header};
use potvrda_proto::jose::{TYP_WITHDRAWAL, WithdrawalClaims, WithdrawalReason};

use super::sha256_b64;
use crate::error::Result;
use crate::keys::ServerKeys;
use crate::ports::{PushGateway, PushJob};
use crate::store::{DeviceId, LoginId, LoginRecord, Store};

/// How long a withdrawal is valid (and its push's `TTL`): a phone offline
/// longer finds the challenge expired anyway.
const WITHDRAWAL_TTL: i64 = 300;

/// The login's `Topic`: 32 characters of the base64url alphabet (RFC 8030
/// §5.4), from a hash, so the push service learns nothing of the login.
pub(super) fn topic(login_id: &LoginId) -> String {
    sha256_b64(format!("potvrda-topic:{login_id}").as_bytes())[..32].to_owned()
}

/// Push a withdrawal of `record`'s challenge to each of its devices but
/// `except` (the one that answered), where push reaches them. Never fails
/// the decision it follows: a device that misses it drops the prompt at
/// its next pull, or when the challenge expires.
pub(super) async fn withdraw_prompts(
    (store, push, keys): (&dyn Store, &dyn PushGateway, &ServerKeys),
    record: &LoginRecord,
    except: Option<&DeviceId>,
    reason: WithdrawalReason,
    now: i64,
) {
    if let Err(e) = withdraw(store, push, keys, record, except, reason, now).await {
        tracing::warn!(login_id = %record.id, error = %e, "prompts not withdrawn");
    }
}

async fn withdraw(
    store: &dyn Store,
    push: &dyn PushGateway,
    keys: &ServerKeys,
    record: &LoginRecord,
    except: Option<&DeviceId>,
    reason: WithdrawalReason,
    now: i64,
) -> Result<()> {
    let others: Vec<&DeviceId> = record
        .challenges
        .iter()
        .map(|c| &c.device_id)
        .filter(|d| Some(*d) != except)
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some(TYP_WITHDRAWAL.into());
    header.kid = Some(keys.signing.kid.clone());
    let devices = store.devices_of(&record.user_id).await?;
    for device in devices {
        if !others.contains(&&device.id) || device.push.is_none() || device.push_gone {
            continue;
        }
        let claims = WithdrawalClaims {
            cid: record.cid.clone(),
            aud: device.id.to_string(),
            reason,
            iat: now,
            exp: now + WITHDRAWAL_TTL,
        };
        let payload = jsonwebtoken::encode(&header, &claims, &keys.signing.encoding)?;
        push.dispatch(
            device,
            PushJob {
                login_id: record.id.clone(),
                payload,
                expires_at: now + WITHDRAWAL_TTL,
                created_ms: record.created_at_ms,
                topic: topic(&record.id),
                withdrawal: true,
            },
        );
    }
    Ok(())
}
