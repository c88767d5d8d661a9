//! The counter's web sessions (`/counter`). An official logs in with the
//! same password and phone approval as everyone (the phone shows the service
//! "counter", `OwnService::Counter`, in its own language); the browser then holds only a random cookie, and the
//! session lives in the store (a typed record) under the cookie's SHA-256:
//! the state (anonymous, waiting for the phone, logged in) and the start of
//! the working day. The forms' CSRF tokens are the web layer's (the page
//! kit binds them to the cookie).
//!
//! The cookie changes at login (no session fixation) and logout. A logged-in
//! session ends after 30 minutes without a request, after 10 hours in all, or
//! at once when the account is locked, deactivated or no longer staff: the
//! stored account is read on every request, as for the API's tokens. No HTTP
//! types here: `http::counter` parses, calls these, and renders.

use crate::store::{LoginId, UserId};
use potvrda_i18n::Msg;
use potvrda_proto::Secret;
use potvrda_proto::api::{LoginAudience, LoginResponse, LoginStatus, Role};
use potvrda_proto::jose::{LoginContext, OwnService};
use serde::{Deserialize, Serialize};

use super::challenge::{MAX_RESENDS, Origin};
use super::login::own_context;
use super::{Actor, Purpose, sha256_b64};
use crate::audit::Caller;
use crate::clock;
use crate::error::{Error, Result};
use crate::store::records::{JsonRecord, Kind};

/// An anonymous or waiting session lasts this long.
const LOGIN_TTL: i64 = 15 * 60;
/// A logged-in session ends after this long without a request.
const IDLE_TTL: i64 = 30 * 60;
/// … and after this long in all (a working day).
const MAX_AGE: i64 = 10 * 3600;

#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum State {
    Anonymous,
    Pending {
        login_id: LoginId,
        login_secret: Secret,
        number: u8,
        /// A risky login's code, shown instead of the number.
        #[serde(default)]
        code: Option<String>,
        /// When the phone's challenge expires (0: stored before it was kept).
        #[serde(default)]
        expires_at: i64,
        /// How many times the official asked for a new request to the phone.
        #[serde(default)]
        resent: u8,
    },
    Active {
        user_id: UserId,
        started: i64,
    },
}

#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    state: State,
}

/// What the counter page shows for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskView {
    /// The login form, with a message after a failed attempt.
    Login {
        /// Why the last attempt failed.
        error: Option<Msg>,
    },
    /// Waiting for the phone: the number to type there.
    Waiting {
        /// The number (or a risky login's code).
        number: String,
        /// Seconds left to answer on the phone (WCAG 2.2.1), when known.
        expires_in: Option<i64>,
        /// Whether "send a new request to the phone" is still offered.
        can_resend: bool,
    },
    /// A logged-in staff member.
    Staff {
        /// Who, as the admin API sees them.
        principal: Actor,
        /// Their name.
        display_name: String,
        /// Their username.
        username: String,
    },
}

/// One browser's counter session.
pub struct Desk {
    cookie: String,
    stored: Stored,
    /// What to show.
    pub view: DeskView,
    /// A new cookie value the browser must be given.
    pub set_cookie: Option<String>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("cookie", &"***")
            .field("view", &self.view)
            .finish()
    }
}

impl Desk {
    /// The session's cookie, to which the web layer binds its forms' CSRF
    /// tokens (a new one after the login: the pre-login cookie opens nothing).
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// The logged-in staff member, or 401.
    pub fn principal(&self) -> Result<&Actor> {
        match &self.view {
            DeskView::Staff { principal, .. } => Ok(principal),
            _ => Err(Error::Unauthorized),
        }
    }
}

/// What the login form says after a refused attempt (`None`: not the
/// form's to say, the error goes up).
fn refusal(e: &Error) -> Option<Msg> {
    Some(Msg(match e {
        Error::InvalidCredentials => "error-wrong-credentials",
        Error::Forbidden => "desk-not-staff",
        Error::AccountLocked => "desk-account-locked",
        Error::NoDevice => "desk-no-phone",
        Error::RateLimited { .. } => "desk-too-many",
        Error::InvalidRequest(_) => "error-enter-credentials",
        _ => return None,
    }))
}

/// What the waiting page shows: a risky login's code, else the number;
/// the time left and whether it can be renewed. `None` when not waiting.
fn waiting(state: &State, now: i64) -> Option<DeskView> {
    let State::Pending {
        number,
        code,
        expires_at,
        resent,
        ..
    } = state
    else {
        return None;
    };
    Some(DeskView::Waiting {
        number: code.clone().unwrap_or_else(|| number.to_string()),
        expires_in: (*expires_at > 0).then(|| (expires_at - now).max(0)),
        can_resend: *resent < MAX_RESENDS,
    })
}

/// A pending state for a challenge just sent.
fn pending(started: LoginResponse, resent: u8) -> State {
    State::Pending {
        login_id: started.login_id,
        login_secret: started.login_secret,
        number: started.number,
        code: started.code,
        expires_at: started.expires_at,
        resent,
    }
}

/// A counter session is stored under the hash of its cookie.
fn desk_id(cookie: &str) -> String {
    sha256_b64(cookie.as_bytes())
}

impl JsonRecord for Stored {
    const KIND: Kind = Kind::DeskSession;
    type Id = str;
}

capability! {
    /// The counter's browser sessions (desks).
    pub Desks
}

impl Desks<'_> {
    /// A fresh anonymous session with a new cookie. Nothing is stored for
    /// it, so visits to the login page cannot fill the store.
    fn desk_new(&self, error: Option<Msg>) -> Result<Desk> {
        let cookie = clock::token::<32>(self.rng.as_ref())?;
        let mut desk = self.desk_anonymous(&cookie, error);
        desk.set_cookie = Some(cookie);
        Ok(desk)
    }

    fn desk_anonymous(&self, cookie: &str, error: Option<Msg>) -> Desk {
        Desk {
            cookie: cookie.to_owned(),
            stored: Stored {
                state: State::Anonymous,
            },
            view: DeskView::Login { error },
            set_cookie: None,
        }
    }

    async fn desk_save(&self, cookie: &str, stored: &Stored, until: i64) -> Result<()> {
        self.records()
            .put(desk_id(cookie).as_str(), stored, until)
            .await
    }

    /// The session of this cookie, or a new anonymous one. A logged-in
    /// session is checked against the stored account and its idle time is
    /// renewed.
    pub async fn desk(&self, cookie: Option<&str>) -> Result<Desk> {
        // Only cookies as issued: 32 random bytes, base64url.
        let Some(cookie) = cookie.filter(|c| {
            c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }) else {
            return self.desk_new(None);
        };
        let now = self.clock.now();
        let Some(stored) = self.records::<Stored>().get(&desk_id(cookie), now).await? else {
            return Ok(self.desk_anonymous(cookie, None));
        };
        let view = match &stored.state {
            State::Anonymous => DeskView::Login { error: None },
            State::Pending { .. } => {
                waiting(&stored.state, now).unwrap_or(DeskView::Login { error: None })
            }
            State::Active { user_id, started } => {
                let user = self.store.user(user_id).await?;
                let Some(user) = user.filter(|u| {
                    !u.locked
                        && !u.deactivated
                        && u.role != Role::Citizen
                        && now - started < MAX_AGE
                }) else {
                    self.records::<Stored>().delete(&desk_id(cookie)).await?;
                    return self.desk_new(Some(Msg("desk-session-ended")));
                };
                self.desk_save(cookie, &stored, (now + IDLE_TTL).min(started + MAX_AGE))
                    .await?;
                DeskView::Staff {
                    principal: Actor::account(user.id, user.role, user.municipality, true),
                    display_name: user.display_name,
                    username: user.username,
                }
            }
        };
        Ok(Desk {
            cookie: cookie.to_owned(),
            stored,
            view,
            set_cookie: None,
        })
    }

    /// The login form: check the password and send the push; the waiting
    /// page, or the form again with the reason.
    pub async fn desk_login(
        &self,
        mut desk: Desk,
        username: String,
        password: String,
        caller: &Caller,
    ) -> Result<Desk> {
        if matches!(desk.stored.state, State::Active { .. }) {
            return Ok(desk);
        }
        let again = |mut desk: Desk, message: Msg| {
            desk.view = DeskView::Login {
                error: Some(message),
            };
            Ok(desk)
        };
        let started = match self
            .logins()
            .browser_login(username, password, None, Purpose::Counter, caller)
            .await
        {
            Ok(s) => s,
            Err(e) => return refusal(&e).map_or(Err(e), |message| again(desk, message)),
        };
        // The waiting state goes under a new cookie, so with new CSRF tokens
        // (only after the right password: bounded by the limits). The
        // pre-login cookie opens nothing: whoever planted it cannot follow
        // the official's approval (security round 2, finding 4).
        self.records::<Stored>()
            .delete(&desk_id(&desk.cookie))
            .await?;
        let cookie = clock::token::<32>(self.rng.as_ref())?;
        desk.stored.state = pending(started, 0);
        let now = self.clock.now();
        self.desk_save(&cookie, &desk.stored, now + LOGIN_TTL)
            .await?;
        desk.cookie.clone_from(&cookie);
        desk.set_cookie = Some(cookie);
        desk.view = waiting(&desk.stored.state, now).ok_or(Error::NotFound)?;
        Ok(desk)
    }

    /// The waiting page's long-poll: the phone's decision, not consumed.
    pub async fn desk_wait(&self, desk: &Desk, wait: u64) -> Result<LoginStatus> {
        let State::Pending {
            login_id,
            login_secret,
            ..
        } = &desk.stored.state
        else {
            return Err(Error::NotFound);
        };
        let (answer, _) = self
            .outcomes()
            .wait_for_decision(login_id, Some(login_secret.expose()), wait, false)
            .await?;
        Ok(answer.status)
    }

    /// "Send a new request to the phone" (WCAG 2.2.1), as on the citizens'
    /// waiting page: this session typed the right password (its cookie was
    /// issued after it), so a new challenge goes to the phone without it,
    /// superseding the one before, at most [`MAX_RESENDS`] times, the
    /// phone's push limits holding. A login already decided, or past the
    /// limit, goes on as "continue" does; an account no longer staff (or
    /// locked) ends the session.
    pub async fn desk_again(&self, desk: Desk, caller: &Caller) -> Result<Desk> {
        let State::Pending { resent, .. } = desk.stored.state else {
            return Ok(desk);
        };
        let Some((status, login)) = self.decision(&desk).await? else {
            return Ok(desk);
        };
        let still_open = matches!(status, LoginStatus::Pending | LoginStatus::Expired);
        if !still_open || resent >= MAX_RESENDS {
            return self.decided(desk, status, login).await;
        }
        let staff = self
            .store
            .user(&login.record.user_id)
            .await?
            .filter(|u| !u.locked && !u.deactivated && u.role != Role::Citizen);
        let context = LoginContext {
            ip: caller.ip.map(|ip| ip.to_string()),
            user_agent: caller.user_agent.clone(),
            ..LoginContext::default()
        };
        let started = match staff {
            Some(user) => {
                self.challenges()
                    .challenge(
                        &user,
                        own_context(context, OwnService::Counter),
                        LoginAudience::Admin,
                        caller,
                        &Origin::default(),
                    )
                    .await
            }
            None => Err(Error::Forbidden),
        };
        let started = match started {
            Ok(s) => s,
            Err(e) => {
                let message = refusal(&e).ok_or(e)?;
                self.records::<Stored>()
                    .delete(&desk_id(&desk.cookie))
                    .await?;
                return Ok(self.desk_anonymous(&desk.cookie, Some(message)));
            }
        };
        let mut desk = desk;
        desk.stored.state = pending(started, resent + 1);
        let now = self.clock.now();
        self.desk_save(&desk.cookie, &desk.stored, now + LOGIN_TTL)
            .await?;
        desk.view = waiting(&desk.stored.state, now).ok_or(Error::NotFound)?;
        Ok(desk)
    }

    /// After the phone: once approved by a staff member, a logged-in
    /// session under a new cookie; while pending, the waiting page; else the
    /// login form with the reason.
    pub async fn desk_continue(&self, desk: Desk) -> Result<Desk> {
        match self.decision(&desk).await? {
            Some((status, login)) => self.decided(desk, status, login).await,
            None => Ok(desk),
        }
    }

    /// The phone's decision, now, on the login a waiting session holds.
    async fn decision(&self, desk: &Desk) -> Result<Option<(LoginStatus, crate::store::Login)>> {
        let State::Pending {
            login_id,
            login_secret,
            ..
        } = &desk.stored.state
        else {
            return Ok(None);
        };
        let (answer, login) = self
            .outcomes()
            .wait_for_decision(login_id, Some(login_secret.expose()), 0, false)
            .await?;
        Ok(Some((answer.status, login)))
    }

    /// What a waiting session becomes once its decision is read.
    async fn decided(
        &self,
        desk: Desk,
        status: LoginStatus,
        login: crate::store::Login,
    ) -> Result<Desk> {
        let State::Pending { login_id, .. } = desk.stored.state.clone() else {
            return Ok(desk);
        };
        let now = self.clock.now();
        let fail = |id: &'static str| Some(Msg(id));
        let error = match status {
            LoginStatus::Pending => {
                let view = waiting(&desk.stored.state, now).ok_or(Error::NotFound)?;
                return Ok(Desk { view, ..desk });
            }
            LoginStatus::Approved => {
                // The approval is consumed once (an empty escrow: no token is handed out).
                let taken = self.store.take_token(&login_id, b"", now, 0).await?;
                let user = self.store.user(&login.record.user_id).await?;
                match (taken, user) {
                    (Some(e), Some(user)) if e.is_empty() && user.role != Role::Citizen => {
                        return self.start_day(&desk, user, now).await;
                    }
                    (Some(_), Some(_)) => fail("desk-not-staff"),
                    _ => fail("desk-login-used"),
                }
            }
            LoginStatus::Expired => fail("desk-confirmation-expired"),
            _ => fail("desk-not-confirmed"),
        };
        self.records::<Stored>()
            .delete(&desk_id(&desk.cookie))
            .await?;
        Ok(self.desk_anonymous(&desk.cookie, error))
    }

    /// The official's approved login starts the working day: a new cookie
    /// (the waiting one is dropped), the session kept for `IDLE_TTL`.
    async fn start_day(&self, desk: &Desk, user: crate::store::User, now: i64) -> Result<Desk> {
        self.records::<Stored>()
            .delete(&desk_id(&desk.cookie))
            .await?;
        let cookie = clock::token::<32>(self.rng.as_ref())?;
        let stored = Stored {
            state: State::Active {
                user_id: user.id.clone(),
                started: now,
            },
        };
        self.desk_save(&cookie, &stored, now + IDLE_TTL).await?;
        tracing::info!(user_id = %user.id, "counter session started");
        Ok(Desk {
            set_cookie: Some(cookie.clone()),
            cookie,
            stored,
            view: DeskView::Staff {
                principal: Actor::account(user.id, user.role, user.municipality, true),
                display_name: user.display_name,
                username: user.username,
            },
        })
    }

    /// Log out: the session is gone; a new anonymous one replaces it.
    pub async fn desk_logout(&self, desk: Desk) -> Result<Desk> {
        self.records::<Stored>()
            .delete(&desk_id(&desk.cookie))
            .await?;
        self.desk_new(None)
    }
}
