//! The offline code, server side: each device gets a 32-byte TOTP secret at
//! enrollment ([`potvrda_proto::offline`]), returned once and kept sealed
//! (AES-256-GCM under a key derived from the server's pepper, bound to the
//! device id), since checking a TOTP needs the secret itself. A code is
//! checked against the account's active devices only (a revoked phone's
//! codes stop working), for the current step and one on either side, and
//! each step's code is accepted once.

use crate::store::{DeviceId, UserId};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use potvrda_proto::Secret;
use potvrda_proto::offline;

use super::{ct_eq_str, escrow};
use crate::clock;
use crate::error::Result;
use crate::store::records::{DeviceStep, Kind, Marker, OfflineStepUsed, Record};

/// A device's offline secret, sealed (stored as the sealed bytes).
struct SealedSecret(Vec<u8>);

impl Record for SealedSecret {
    const KIND: Kind = Kind::OfflineSecret;
    type Id = DeviceId;
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(self.0.clone())
    }
    fn decode(raw: &[u8]) -> Result<Self> {
        Ok(Self(raw.to_vec()))
    }
}

capability! {
    /// The offline codes of a device.
    pub(crate) OfflineCodes
}

impl OfflineCodes<'_> {
    /// The key material the secrets are sealed under (never stored).
    fn offline_seal_key(&self) -> String {
        self.keys.pepper.hash(b"potvrda offline secrets at rest v1")
    }

    /// A new secret for `device_id`, stored sealed; base64url, to give once.
    pub(super) async fn issue_offline_secret(&self, device_id: &DeviceId) -> Result<Secret> {
        let secret = clock::bytes::<{ offline::SECRET_LEN }>(self.rng.as_ref())?;
        let b64 = URL_SAFE_NO_PAD.encode(secret);
        let sealed = escrow::seal(&self.offline_seal_key(), device_id, &b64)?;
        // No expiry: it lasts as long as the device (a revoked one is not checked).
        self.records()
            .put(device_id, &SealedSecret(sealed), 0)
            .await?;
        Ok(b64.into())
    }

    /// The device whose offline code `code` is, now, for the first time; or `None`.
    pub(super) async fn check_offline_code(
        &self,
        user_id: &UserId,
        code: &str,
        now: i64,
    ) -> Result<Option<DeviceId>> {
        let Ok(t) = u64::try_from(now) else {
            return Ok(None);
        };
        let key = self.offline_seal_key();
        for device in self.store.devices_of(user_id).await? {
            let Some(SealedSecret(sealed)) = self.records().get(&device.id, now).await? else {
                continue;
            };
            let Some(secret) = escrow::open(&key, &device.id, &sealed)
                .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            else {
                tracing::error!(device_id = %device.id, "offline secret cannot be opened");
                continue;
            };
            for at in [t.saturating_sub(offline::STEP), t, t + offline::STEP] {
                if ct_eq_str(&offline::code(&secret, at), code) {
                    // Once per step and device: a replayed code is a wrong code.
                    let fresh = self
                        .records::<OfflineStepUsed>()
                        .put_new(
                            &DeviceStep {
                                device_id: device.id.clone(),
                                step: offline::step(at),
                            },
                            &Marker,
                            now + 4 * offline::STEP as i64,
                            now,
                        )
                        .await?;
                    return Ok(fresh.then_some(device.id));
                }
            }
        }
        Ok(None)
    }
}
