//! Who a domain operation serves. The web layer establishes the actor (a
//! desk cookie, an access token with its audience, a pull token, a client
//! credential, the bootstrap token) through the domain's `authenticate_*`
//! functions, and hands it to every operation done on someone's behalf;
//! each operation says which actors it serves, and refuses the others with
//! [`Error::Forbidden`].
//!
//! The flows whose credential *is* their input authenticate inside the flow
//! and take no actor: a login's start (the password), its status (the login
//! secret), enrollment (the activation code), a recovery or offline code,
//! the phone's signed answer, and the OpenID Provider's endpoints (the
//! client's credential, the browser's session).

use potvrda_proto::api::{AuditKind, Role};

use crate::audit::Event;
use crate::error::{Error, Result};
use crate::store::{ClientId, Device, UserId};

/// The actor id of the bootstrap token in the audit trail.
pub const BOOTSTRAP_ACTOR: &str = "bootstrap";
/// The actor id of the audit reader token in the audit trail.
pub const AUDIT_READER_ACTOR: &str = "audit-reader";

/// The authenticated actor of a domain operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The bootstrap token of the configuration: creates the first superadmin.
    Bootstrap,
    /// The audit reader token: reads the audit trail, nothing else.
    AuditReader,
    /// A staff member (official, admin, superadmin) at the counter or on
    /// the admin API, with an admin-audience token or a desk session; the
    /// account as stored now.
    Staff {
        /// The account's id.
        id: UserId,
        /// Its role, never [`Role::Citizen`].
        role: Role,
        /// Its municipality (staff of a municipality).
        municipality: Option<String>,
    },
    /// A person acting for themselves with a portal access token, whatever
    /// their role: a staff member's token for a portal service is this, never
    /// [`Actor::Staff`].
    Citizen {
        /// The account's id.
        id: UserId,
    },
    /// A phone, by a fresh pull token it signed.
    Device(Box<Device>),
    /// A relying party, by its client credential.
    Client {
        /// The registered client's id.
        client_id: ClientId,
    },
}

/// The kinds of [`Actor`], for tables of who may do what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// [`Actor::Bootstrap`].
    Bootstrap,
    /// [`Actor::AuditReader`].
    AuditReader,
    /// [`Actor::Staff`] with this role.
    Staff(Role),
    /// [`Actor::Citizen`].
    Citizen,
    /// [`Actor::Device`].
    Device,
    /// [`Actor::Client`].
    Client,
}

impl Actor {
    /// The account behind a token: staff on the admin audience, a citizen
    /// acting for themselves otherwise (and a citizen's admin-audience token
    /// is still only a citizen).
    pub fn account(id: UserId, role: Role, municipality: Option<String>, admin: bool) -> Self {
        if admin && role != Role::Citizen {
            Self::Staff {
                id,
                role,
                municipality,
            }
        } else {
            Self::Citizen { id }
        }
    }

    /// This actor's kind.
    pub fn kind(&self) -> ActorKind {
        match self {
            Self::Bootstrap => ActorKind::Bootstrap,
            Self::AuditReader => ActorKind::AuditReader,
            Self::Staff { role, .. } => ActorKind::Staff(*role),
            Self::Citizen { .. } => ActorKind::Citizen,
            Self::Device(_) => ActorKind::Device,
            Self::Client { .. } => ActorKind::Client,
        }
    }

    /// Allowed for staff whose role is one of `roles` (and, with
    /// `bootstrap`, for the bootstrap token); 403 for any other actor.
    pub fn require_staff(&self, roles: &[Role], bootstrap: bool) -> Result<()> {
        match self {
            Self::Bootstrap if bootstrap => Ok(()),
            Self::Staff { role, .. } if roles.contains(role) => Ok(()),
            _ => Err(Error::Forbidden),
        }
    }

    /// The citizen acting for themselves, or 403.
    pub fn citizen(&self) -> Result<&UserId> {
        match self {
            Self::Citizen { id } => Ok(id),
            _ => Err(Error::Forbidden),
        }
    }

    /// The device speaking for itself, or 403.
    pub fn device(&self) -> Result<&Device> {
        match self {
            Self::Device(d) => Ok(d),
            _ => Err(Error::Forbidden),
        }
    }

    /// An audit event with this actor as the actor.
    pub fn event(&self, kind: AuditKind, at: i64) -> Event {
        let e = Event::new(kind, at);
        match self {
            Self::Bootstrap => e.actor(BOOTSTRAP_ACTOR),
            Self::AuditReader => e.actor(AUDIT_READER_ACTOR),
            Self::Staff {
                id, municipality, ..
            } => match municipality {
                Some(m) => e.actor(id).municipality(m),
                None => e.actor(id),
            },
            Self::Citizen { id } => e.actor(id),
            Self::Device(d) => e.actor(&d.user_id).with("device_id", d.id.as_str()),
            Self::Client { client_id } => e.actor(client_id),
        }
    }

    /// The staff member's account id (none for the other actors).
    pub fn staff_id(&self) -> Option<&UserId> {
        match self {
            Self::Staff { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The staff member's role.
    pub fn role(&self) -> Option<Role> {
        match self {
            Self::Staff { role, .. } => Some(*role),
            _ => None,
        }
    }

    /// The staff member's municipality.
    pub fn municipality(&self) -> Option<&str> {
        match self {
            Self::Staff { municipality, .. } => municipality.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_checked() {
        let official = Actor::Staff {
            id: "o".into(),
            role: Role::Official,
            municipality: Some("novi-sad".into()),
        };
        assert!(official.require_staff(&[Role::Official], false).is_ok());
        assert!(matches!(
            official.require_staff(&[Role::Admin], true),
            Err(Error::Forbidden)
        ));
        assert!(Actor::Bootstrap.require_staff(&[], true).is_ok());
        assert!(
            Actor::Bootstrap
                .require_staff(&[Role::Superadmin], false)
                .is_err()
        );
        let citizen = Actor::Citizen { id: "c".into() };
        assert!(citizen.require_staff(&[Role::Citizen], true).is_err());
        assert_eq!(citizen.citizen().ok().map(UserId::as_str), Some("c"));
        assert!(official.citizen().is_err());
        assert!(official.device().is_err());
        let e = official.event(AuditKind::AccountLocked, 1).into_inner();
        assert_eq!(e.actor_id.as_deref(), Some("o"));
        assert_eq!(e.municipality.as_deref(), Some("novi-sad"));
    }

    #[test]
    fn a_staff_members_portal_token_is_a_citizen() {
        let staff = Actor::account("a".into(), Role::Superadmin, None, false);
        assert_eq!(staff, Actor::Citizen { id: "a".into() });
        let citizen = Actor::account("c".into(), Role::Citizen, None, true);
        assert_eq!(citizen.kind(), ActorKind::Citizen);
        let admin = Actor::account("d".into(), Role::Admin, Some("nis".into()), true);
        assert_eq!(admin.kind(), ActorKind::Staff(Role::Admin));
        assert_eq!(admin.municipality(), Some("nis"));
    }
}
