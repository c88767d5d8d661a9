//! Argon2id password hashing on a bounded blocking pool.
//!
//! Hashing never runs on the async workers: each call takes one of
//! `hash_concurrency` permits and then runs on tokio's blocking threads, so a
//! burst of logins queues instead of starving the event loops. An unknown
//! username is verified against a dummy hash with the same parameters, so it
//! costs exactly what a wrong password costs.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    permits: Arc<Semaphore>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    dummy: Arc<str>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", self.argon.params())
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Argon2id with the given costs; `concurrency` hashes at once. Computes
    /// the dummy hash, so call it at start-up, not on a request path.
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        concurrency: usize,
    ) -> Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| Error::Config(format!("argon2 parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let dummy = argon
            .hash_password(b"potvrda dummy password", &salt)
            .map_err(|e| Error::Crypto(format!("argon2: {e}")))?
            .to_string();
        Ok(Self {
            argon,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queued: Arc::default(),
            dummy: dummy.into(),
        })
    }

    /// Hashes waiting for a free slot.
    pub fn queued(&self) -> usize {
        self.queued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The PHC string of a new hash of `password`.
    pub async fn hash(&self, password: SecretString) -> Result<String> {
        let argon = self.argon.clone();
        self.blocking(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            argon
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::Crypto(format!("argon2: {e}")))
        })
        .await
    }

    /// Whether `password` matches `phc`; with `None` (unknown user) the dummy
    /// hash is verified and the answer is always `false`.
    pub async fn verify(&self, password: SecretString, phc: Option<String>) -> Result<bool> {
        let argon = self.argon.clone();
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.to_string());
        let ok = self
            .blocking(move || {
                let parsed = PasswordHash::new(&phc)
                    .map_err(|e| Error::Store(format!("stored hash: {e}")))?;
                Ok(argon
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok())
            })
            .await?;
        Ok(ok && known)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        use std::sync::atomic::Ordering;
        self.queued.fetch_add(1, Ordering::Relaxed);
        let permit = self.permits.clone().acquire_owned().await;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        let permit = permit.map_err(|_| Error::Internal("hash pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("hash task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verify_and_unknown_user() {
        let h = PasswordHasher::new(1024, 1, 1, 2).expect("params");
        let phc = h
            .hash(SecretString::from("correct horse"))
            .await
            .expect("hashes");
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(
            h.verify(SecretString::from("correct horse"), Some(phc.clone()))
                .await
                .expect("verifies")
        );
        assert!(
            !h.verify(SecretString::from("wrong"), Some(phc))
                .await
                .expect("verifies")
        );
        // The dummy hash's own password does not log in a non-existent user.
        assert!(
            !h.verify(SecretString::from("potvrda dummy password"), None)
                .await
                .expect("verifies")
        );
    }
}
