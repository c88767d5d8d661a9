//! Subject identifiers (OpenID Connect Core §8): the account id for a
//! `public` client, and for a `pairwise` one a value of its own per
//! citizen and sector — an HMAC under the server's pepper, so it is stable
//! for the sector (its services share it), unlinkable across sectors, and
//! the same on every instance. Each pairwise subject handed out is
//! remembered against its account, so a hint carrying it finds the
//! citizen, and the service desk can translate it (audited).

use super::*;
use crate::actor::Actor;
use crate::service::client::SubjectType;
use potvrda_proto::api::Role;

capability! {
    /// Subject identifiers: public and pairwise.
    pub Subjects
}

/// A pairwise subject handed out, and whose it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PairwiseSubject {
    user_id: UserId,
}

/// Under `{sector}:{sub}`.
impl JsonRecord for PairwiseSubject {
    const KIND: Kind = Kind::PairwiseSubject;
    type Id = str;
}

impl Subjects<'_> {
    /// The `sub` that `client` knows the citizen by.
    pub(crate) fn of(&self, client: &OidcClient, user: &UserId) -> String {
        match (client.subject_type, client.sector()) {
            (SubjectType::Pairwise, Some(sector)) => self.pairwise(&sector, user),
            _ => user.to_string(),
        }
    }

    fn pairwise(&self, sector: &str, user: &UserId) -> String {
        self.keys
            .pepper
            .hash(format!("potvrda pairwise subject v1:{sector}:{user}").as_bytes())
    }

    /// The `sub` for `client`, remembered when pairwise (before a token
    /// carrying it leaves the server).
    pub(crate) async fn issued(&self, client: &OidcClient, user: &UserId) -> Result<String> {
        let sub = self.of(client, user);
        if let (SubjectType::Pairwise, Some(sector)) = (client.subject_type, client.sector()) {
            self.records()
                .put(
                    format!("{sector}:{sub}").as_str(),
                    &PairwiseSubject {
                        user_id: user.clone(),
                    },
                    0,
                )
                .await?;
        }
        Ok(sub)
    }

    /// The account `client` knows as `sub`.
    pub(crate) async fn account(&self, client: &OidcClient, sub: &str) -> Result<Option<UserId>> {
        match (client.subject_type, client.sector()) {
            (SubjectType::Pairwise, Some(sector)) => Ok(self
                .records::<PairwiseSubject>()
                .get(format!("{sector}:{sub}").as_str(), self.clock.now())
                .await?
                .map(|p| p.user_id)),
            _ => Ok(Some(UserId::new(sub))),
        }
    }

    /// The service desk: the account behind a client's pairwise `sub`
    /// (superadmins; audited with who asked).
    pub async fn resolve(&self, client_id: &ClientId, sub: &str, by: &Actor) -> Result<UserId> {
        by.require_staff(&[Role::Superadmin], true)?;
        let client = self
            .provider()
            .client(client_id)
            .await?
            .ok_or(Error::UnknownClient)?;
        let user = self.account(&client, sub).await?.ok_or(Error::NotFound)?;
        self.audit
            .record(
                by.event(AuditKind::SubjectResolved, self.clock.now())
                    .user(&user)
                    .with("client_id", client_id.as_str())
                    .with("sub", sub),
            )
            .await;
        Ok(user)
    }
}
