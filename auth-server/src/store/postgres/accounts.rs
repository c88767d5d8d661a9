//! Accounts, activation codes and devices in PostgreSQL.

use async_trait::async_trait;
use sqlx::types::Json;

use super::PgStore;
use crate::error::{Error, Result};
use crate::store::{
    Activation, Device, DeviceId, DeviceStore, EnrollOutcome, PushTarget, User, UserId, UserStore,
};

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, user: &User, activation: &Activation) -> Result<()> {
        let created = self
            .timed("create_user", async {
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO users (id, username, municipality, record) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(user.id.as_str())
                .bind(&user.username)
                .bind(&user.municipality)
                .bind(Json(user))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO activations (code_hash, user_id, expires_at) VALUES ($1, $2, $3)",
                )
                .bind(&activation.code_hash)
                .bind(activation.user_id.as_str())
                .bind(activation.expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            })
            .await?;
        if created {
            Ok(())
        } else {
            Err(Error::UsernameTaken)
        }
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        self.timed("user_by_name", async {
            sqlx::query_scalar::<_, Json<User>>("SELECT record FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await
        })
        .await
        .map(|u| u.map(|Json(u)| u))
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        self.timed("user", async {
            sqlx::query_scalar::<_, Json<User>>("SELECT record FROM users WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
        })
        .await
        .map(|u| u.map(|Json(u)| u))
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        // The username stays as created: only the record and what is looked up by change.
        let updated = self
            .timed("update_user", async {
                sqlx::query(
                    "UPDATE users SET municipality = $2, \
                     record = jsonb_set($3::jsonb, '{username}', record -> 'username') \
                     WHERE id = $1",
                )
                .bind(user.id.as_str())
                .bind(&user.municipality)
                .bind(Json(user))
                .execute(&self.pool)
                .await
            })
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn new_activation(&self, activation: &Activation) -> Result<()> {
        self.timed("new_activation", async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM activations WHERE user_id = $1")
                .bind(activation.user_id.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO activations (code_hash, user_id, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (code_hash) DO UPDATE SET user_id = $2, expires_at = $3",
            )
            .bind(&activation.code_hash)
            .bind(activation.user_id.as_str())
            .bind(activation.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
        .await
    }

    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<User>> {
        // Bytewise order: every name with the prefix comes before any name
        // at or after it without, so the range scan stops at the first miss.
        let rows = self
            .timed("search_users", async {
                sqlx::query_as::<_, (String, Json<User>)>(
                    "SELECT username, record FROM users WHERE username >= $1 \
                     ORDER BY username LIMIT $2",
                )
                .bind(prefix)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(_, Json(u))| u)
            .collect())
    }
}

#[async_trait]
impl DeviceStore for PgStore {
    async fn enroll_device(
        &self,
        code_hash: &str,
        device: Device,
        now: i64,
    ) -> Result<EnrollOutcome> {
        self.timed("enroll_device", async {
            let mut tx = self.pool.begin().await?;
            // Single use: the code goes whether or not it was still valid.
            let code: Option<(String, i64)> = sqlx::query_as(
                "DELETE FROM activations WHERE code_hash = $1 RETURNING user_id, expires_at",
            )
            .bind(code_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let user = match code {
                Some((user_id, expires_at)) if expires_at > now => {
                    sqlx::query_scalar::<_, Json<User>>(
                        "SELECT record FROM users WHERE id = $1 FOR UPDATE",
                    )
                    .bind(&user_id)
                    .fetch_optional(&mut *tx)
                    .await?
                }
                _ => None,
            };
            let Some(Json(user)) = user else {
                tx.commit().await?;
                return Ok(EnrollOutcome::InvalidCode);
            };
            let device = Device {
                user_id: user.id.clone(),
                ..device
            };
            sqlx::query("INSERT INTO devices (id, user_id, record) VALUES ($1, $2, $3)")
                .bind(device.id.as_str())
                .bind(device.user_id.as_str())
                .bind(Json(&device))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(EnrollOutcome::Enrolled(Box::new(user)))
        })
        .await
    }

    async fn devices_of(&self, user_id: &UserId) -> Result<Vec<Device>> {
        self.timed("devices_of", async {
            sqlx::query_scalar::<_, Json<Device>>(
                "SELECT record FROM devices WHERE user_id = $1 ORDER BY id",
            )
            .bind(user_id.as_str())
            .fetch_all(&self.pool)
            .await
        })
        .await
        .map(|v| v.into_iter().map(|Json(d)| d).collect())
    }

    async fn device(&self, device_id: &DeviceId) -> Result<Option<Device>> {
        self.timed("device", async {
            sqlx::query_scalar::<_, Json<Device>>("SELECT record FROM devices WHERE id = $1")
                .bind(device_id.as_str())
                .fetch_optional(&self.pool)
                .await
        })
        .await
        .map(|d| d.map(|Json(d)| d))
    }

    async fn mark_push_gone(&self, device_id: &DeviceId, endpoint: &str) -> Result<()> {
        self.timed("mark_push_gone", async {
            sqlx::query(
                "UPDATE devices SET record = jsonb_set(record, '{push_gone}', 'true') \
                 WHERE id = $1 AND record -> 'push' ->> 'endpoint' = $2",
            )
            .bind(device_id.as_str())
            .bind(endpoint)
            .execute(&self.pool)
            .await
            .map(drop)
        })
        .await
    }

    async fn set_push(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        push: Option<PushTarget>,
    ) -> Result<bool> {
        self.change_device("set_push", user_id, device_id, move |d| {
            d.push = push;
            d.push_gone = false;
        })
        .await
    }

    async fn revoke_device(&self, user_id: &UserId, device_id: &DeviceId) -> Result<bool> {
        self.timed("revoke_device", async {
            sqlx::query("DELETE FROM devices WHERE id = $1 AND user_id = $2")
                .bind(device_id.as_str())
                .bind(user_id.as_str())
                .execute(&self.pool)
                .await
        })
        .await
        .map(|r| r.rows_affected() == 1)
    }

    async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        name: &str,
    ) -> Result<bool> {
        let name = name.to_owned();
        self.change_device("rename_device", user_id, device_id, move |d| d.name = name)
            .await
    }
}

impl PgStore {
    /// Change the user's device in one transaction (the row locked while
    /// it changes); `true` if it is theirs.
    async fn change_device(
        &self,
        op: &'static str,
        user_id: &UserId,
        device_id: &DeviceId,
        change: impl FnOnce(&mut Device) + Send,
    ) -> Result<bool> {
        self.timed(op, async {
            let mut tx = self.pool.begin().await?;
            let Some(Json(mut device)) = sqlx::query_scalar::<_, Json<Device>>(
                "SELECT record FROM devices WHERE id = $1 AND user_id = $2 FOR UPDATE",
            )
            .bind(device_id.as_str())
            .bind(user_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(false);
            };
            change(&mut device);
            sqlx::query("UPDATE devices SET record = $2 WHERE id = $1")
                .bind(device_id.as_str())
                .bind(Json(&device))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }
}
