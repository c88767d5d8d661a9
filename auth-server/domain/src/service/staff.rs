//! Who may do what under `/v1/admin`: the caller ([`Actor`]) is the
//! bootstrap token or a staff member's access token (checked against the
//! token keys and, every time, against the stored account, so a role change,
//! deactivation or lock takes effect at once); municipalities; staff
//! accounts; locking and unlocking accounts.

use crate::store::UserId;
use jsonwebtoken::{Algorithm, Validation};
use potvrda_proto::api::{
    AuditKind, CreateCitizenRequest, CreateCitizenResponse, CreateMunicipalityRequest,
    CreateStaffRequest, LoginAudience, Municipality, Role,
};
use potvrda_proto::jose::AccessTokenClaims;
use secrecy::ExposeSecret;

use super::{Actor, clean_text, ct_eq_str};
use crate::audit::Caller;
use crate::error::{Error, Result};
use crate::store::User;
use crate::store::records::{FirstSuperadmin, JsonRecord, Kind, Marker};

impl JsonRecord for Municipality {
    const KIND: Kind = Kind::Municipality;
    type Id = str;
}

capability! {
    /// Municipalities, staff accounts and who may do what.
    pub StaffAdmin
}

impl StaffAdmin<'_> {
    /// Who presents this bearer credential to the admin API: the bootstrap
    /// token (constant time), or an access token of an active, unlocked
    /// account minted for the admin API (`aud` = `admin_audience`, from a
    /// login made with `"audience": "admin"`). A token for a portal service
    /// is never admin authority, whoever holds it.
    pub async fn authenticate_admin(&self, bearer: Option<&str>) -> Result<Actor> {
        self.authenticate(bearer, LoginAudience::Admin).await
    }

    /// Who presents this bearer credential to the self-service API
    /// (`/v1/me`): a portal access token of an active, unlocked account, as
    /// a citizen acting for themselves, whatever their role.
    pub async fn authenticate_self(&self, bearer: Option<&str>) -> Result<Actor> {
        self.authenticate(bearer, LoginAudience::Portal).await
    }

    async fn authenticate(&self, bearer: Option<&str>, audience: LoginAudience) -> Result<Actor> {
        let token = bearer.ok_or(Error::Unauthorized)?;
        if let Some(expected) = &self.settings.staff.bootstrap_token
            && ct_eq_str(expected.expose_secret(), token)
        {
            return Ok(Actor::Bootstrap);
        }
        if audience == LoginAudience::Admin
            && let Some(reader) = &self.settings.staff.audit_reader_token
            && ct_eq_str(reader.expose_secret(), token)
        {
            return Ok(Actor::AuditReader);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::Unauthorized)?;
        // Only the portal's own access tokens: not an OpenID client's (`at+jwt`).
        if header.alg != Algorithm::ES256
            || header.typ.as_deref() == Some(potvrda_proto::oidc::TYP_ACCESS_TOKEN)
        {
            return Err(Error::Unauthorized);
        }
        let keys = self.keyring.current();
        let (key, _) = header
            .kid
            .as_deref()
            .and_then(|kid| keys.verifier(kid))
            .ok_or(Error::Unauthorized)?;
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[match audience {
            LoginAudience::Portal => &self.settings.tokens.token_audience,
            LoginAudience::Admin => &self.settings.tokens.admin_audience,
        }]);
        v.set_issuer(&[&self.public_url]);
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, key, &v)
            .map_err(|_| Error::Unauthorized)?
            .claims;
        if claims.exp <= self.clock.now() {
            return Err(Error::Unauthorized);
        }
        let user = self
            .store
            .user(&UserId::new(&claims.sub))
            .await?
            .filter(|u| !u.deactivated && !u.locked)
            .ok_or(Error::Unauthorized)?;
        Ok(Actor::account(
            user.id,
            user.role,
            user.municipality,
            audience == LoginAudience::Admin,
        ))
    }

    /// `POST /v1/admin/municipalities` (superadmin).
    pub async fn create_municipality(
        &self,
        req: CreateMunicipalityRequest,
        by: &Actor,
        caller: &Caller,
    ) -> Result<Municipality> {
        by.require_staff(&[Role::Superadmin], false)?;
        let code = req.code.trim().to_ascii_lowercase();
        let ok = (2..=32).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(Error::InvalidRequest(
                "code must be 2-32 characters of a-z, 0-9, '-'".into(),
            ));
        }
        let m = Municipality {
            code,
            name: clean_text("name", &req.name, 100)?,
        };
        let now = self.clock.now();
        if !self.records().put_new(m.code.as_str(), &m, 0, now).await? {
            return Err(Error::MunicipalityExists);
        }
        self.audit
            .record(
                by.event(AuditKind::MunicipalityCreated, now)
                    .caller(caller)
                    .with("code", m.code.as_str())
                    .with("name", m.name.as_str()),
            )
            .await;
        Ok(m)
    }

    async fn municipality_exists(&self, code: &str) -> Result<bool> {
        Ok(self
            .records::<Municipality>()
            .get(code, self.clock.now())
            .await?
            .is_some())
    }

    /// `POST /v1/admin/staff`: the bootstrap token creates the first
    /// superadmin only; a superadmin creates anyone; an admin creates
    /// officials of their own municipality.
    pub async fn create_staff(
        &self,
        req: CreateStaffRequest,
        by: &Actor,
        caller: &Caller,
    ) -> Result<CreateCitizenResponse> {
        let municipality = req
            .municipality
            .as_ref()
            .map(|m| m.trim().to_ascii_lowercase());
        Self::may_create(by, req.role, municipality.as_deref())?;
        self.placed(req.role, municipality.as_deref()).await?;
        let now = self.clock.now();
        // The bootstrap token makes one superadmin, ever: the marker is taken atomically.
        if *by == Actor::Bootstrap
            && !self
                .records::<FirstSuperadmin>()
                .put_new(&(), &Marker, 0, now)
                .await?
        {
            return Err(Error::Forbidden);
        }
        let account = CreateCitizenRequest {
            username: req.username,
            display_name: req.display_name,
            email: None,
            phone: None,
        };
        let created = self
            .accounts()
            .create_account(
                account,
                req.role,
                municipality.clone(),
                by.staff_id().map(UserId::as_str),
            )
            .await;
        let (user, answer) = match created {
            Ok(c) => c,
            Err(e) => {
                if *by == Actor::Bootstrap {
                    // Not created after all: the bootstrap token may try again.
                    self.records::<FirstSuperadmin>().delete(&()).await?;
                }
                return Err(e);
            }
        };
        let mut event = by
            .event(AuditKind::StaffCreated, now)
            .user(&user.id)
            .caller(caller)
            .with("username", user.username.as_str())
            .with("role", req.role.as_str());
        if let Some(m) = &municipality {
            event = event.with("municipality", m.as_str());
        }
        self.audit.record(event).await;
        Ok(answer)
    }

    /// Who may create whom: the bootstrap token the first superadmin, a
    /// superadmin anyone, an admin the officials of their own municipality.
    fn may_create(by: &Actor, role: Role, municipality: Option<&str>) -> Result<()> {
        match (by, role) {
            (_, Role::Citizen) => Err(Error::InvalidRequest(
                "citizens are created at /v1/admin/citizens".into(),
            )),
            (Actor::Bootstrap, Role::Superadmin) => Ok(()),
            (Actor::Staff { .. }, _) if by.role() == Some(Role::Superadmin) => Ok(()),
            (Actor::Staff { .. }, Role::Official)
                if by.role() == Some(Role::Admin)
                    && municipality.is_some()
                    && municipality == by.municipality() =>
            {
                Ok(())
            }
            _ => Err(Error::Forbidden),
        }
    }

    /// A superadmin belongs to no municipality; everyone else to an existing one.
    async fn placed(&self, role: Role, municipality: Option<&str>) -> Result<()> {
        match (role, municipality) {
            (Role::Superadmin, None) => Ok(()),
            (Role::Superadmin, Some(_)) => Err(Error::InvalidRequest(
                "a superadmin has no municipality".into(),
            )),
            (_, None) => Err(Error::InvalidRequest(
                "admins and officials belong to a municipality".into(),
            )),
            (_, Some(m)) if !self.municipality_exists(m).await? => Err(Error::UnknownMunicipality),
            _ => Ok(()),
        }
    }

    /// Whether `by` may manage staff account `target`.
    fn may_manage_staff(by: &Actor, target: &User) -> bool {
        match by.role() {
            Some(Role::Superadmin) => true,
            Some(Role::Admin) => {
                target.role == Role::Official
                    && target.municipality.is_some()
                    && target.municipality.as_deref() == by.municipality()
            }
            _ => false,
        }
    }

    /// `POST /v1/admin/staff/{user_id}/deactivate`.
    pub async fn deactivate_staff(
        &self,
        user_id: &UserId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<()> {
        by.require_staff(&[Role::Admin, Role::Superadmin], false)?;
        let mut user = self
            .store
            .user(user_id)
            .await?
            .filter(|u| u.role != Role::Citizen)
            .ok_or(Error::NotFound)?;
        if !Self::may_manage_staff(by, &user) {
            return Err(Error::Forbidden);
        }
        user.deactivated = true;
        self.store.update_user(&user).await?;
        self.audit
            .record(
                by.event(AuditKind::StaffDeactivated, self.clock.now())
                    .user(&user.id)
                    .caller(caller),
            )
            .await;
        Ok(())
    }

    /// `POST /v1/admin/citizens/{user_id}/lock` and `/unlock` (officials and up).
    pub async fn set_locked(
        &self,
        user_id: &UserId,
        locked: bool,
        by: &Actor,
        caller: &Caller,
    ) -> Result<()> {
        by.require_staff(&[Role::Official, Role::Admin, Role::Superadmin], false)?;
        let mut user = self
            .store
            .user(user_id)
            .await?
            .filter(|u| u.role == Role::Citizen)
            .ok_or(Error::NotFound)?;
        user.locked = locked;
        if locked {
            // An unlock later must not revive what the lock ended.
            user.generation += 1;
        } else {
            user.fraud_reported_at = None;
        }
        self.store.update_user(&user).await?;
        if locked {
            self.logout_notices().all_ended(&user.id).await?;
        }
        let kind = if locked {
            AuditKind::AccountLocked
        } else {
            AuditKind::AccountUnlocked
        };
        self.audit
            .record(
                by.event(kind, self.clock.now())
                    .user(&user.id)
                    .caller(caller),
            )
            .await;
        Ok(())
    }

    /// The citizen reported the login as fraud on the phone: lock the account.
    pub(super) async fn lock_after_fraud(&self, user_id: &UserId) -> Result<()> {
        if let Some(mut user) = self.store.user(user_id).await? {
            user.locked = true;
            user.generation += 1;
            user.fraud_reported_at = Some(self.clock.now());
            self.store.update_user(&user).await?;
            self.logout_notices().all_ended(user_id).await?;
        }
        Ok(())
    }

    /// The municipality filter of an audit read by `by`: none for the
    /// national view; an admin's own municipality for the staff's acts —
    /// and none when the read is about one citizen of the admin's own
    /// municipality, whose every event (their own acts, and any staff's acts
    /// on them) that admin sees (security round 2, finding 12). A citizen of
    /// another municipality shows only the admin's own staff's acts.
    pub async fn audit_scope(
        &self,
        by: &Actor,
        user_id: Option<&UserId>,
    ) -> Result<Option<String>> {
        if let (
            Actor::Staff {
                role: Role::Admin,
                municipality: Some(m),
                ..
            },
            Some(user_id),
        ) = (by, user_id)
            && self.citizen_of(user_id, m).await?
        {
            return Ok(None);
        }
        self.national_or_own(by)
    }

    /// Whether `user_id` is a citizen opened at a counter of municipality `m`.
    pub(super) async fn citizen_of(&self, user_id: &UserId, m: &str) -> Result<bool> {
        Ok(self
            .store
            .user(user_id)
            .await?
            .is_some_and(|u| u.role == Role::Citizen && u.municipality.as_deref() == Some(m)))
    }

    fn national_or_own(&self, by: &Actor) -> Result<Option<String>> {
        match by {
            Actor::Bootstrap | Actor::AuditReader => Ok(None),
            Actor::Staff {
                role: Role::Superadmin,
                ..
            } => Ok(None),
            Actor::Staff {
                role: Role::Admin,
                municipality,
                ..
            } => Ok(municipality.clone().or(Some(String::new()))),
            _ => Err(Error::Forbidden),
        }
    }
}
