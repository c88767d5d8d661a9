//! The logins a device holds until they are answered or expire: what the
//! approval screen shows. Every app keeps one [`Inbox`] (the uniffi
//! `Device`, the browser companion), so the rules live here once: a
//! challenge pushed twice is held once, a pull replaces what is held, an
//! expired login is no longer shown, an answered one is let go.

use serde::Serialize;

use potvrda_i18n::Locale;

use crate::protocol::{self, Challenge};

/// What the approval screen shows of a login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shown {
    /// The challenge id, to answer it by.
    pub id: String,
    /// The account logging in.
    pub username: String,
    /// The service the citizen is logging into, in the inbox's language
    /// (the portal's name when the challenge names none).
    pub service: String,
    /// The browser's address, as the portal saw it.
    pub ip: Option<String>,
    /// The browser's user agent.
    pub user_agent: Option<String>,
    /// What the consumption device shows too (a CIBA request's
    /// `binding_message`, protocol 3): the citizen checks the two match.
    pub binding_message: Option<String>,
    /// Unix seconds after which it can no longer be answered.
    pub expires_at: i64,
    /// A risky login asks for the login screen's code of this many digits
    /// instead of the two-digit number.
    pub code_digits: Option<u8>,
    /// Why the login looks risky, in words, from the signed challenge.
    pub notices: Vec<String>,
}

impl Shown {
    /// What the screen shows of `c`, its notices in `locale`.
    pub fn of(c: &Challenge, locale: Locale) -> Self {
        Self {
            id: c.claims.cid.to_string(),
            username: c.claims.sub.clone(),
            service: protocol::service_name(c, locale),
            ip: c.claims.ctx.ip.clone(),
            user_agent: c.claims.ctx.user_agent.clone(),
            binding_message: c.claims.ctx.binding_message.clone(),
            expires_at: c.claims.exp,
            code_digits: protocol::code_digits(c),
            notices: protocol::notices(c, locale),
        }
    }
}

/// The verified challenges a device holds.
#[derive(Debug, Clone, Default)]
pub struct Inbox {
    held: Vec<Challenge>,
    locale: Locale,
}

impl Inbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Say what is shown in `locale` from now on (the phone's language, or
    /// the citizen's choice).
    pub fn set_locale(&mut self, locale: Locale) {
        self.locale = locale;
    }

    /// The language what is shown is in.
    pub fn locale(&self) -> Locale {
        self.locale
    }

    /// Hold a verified challenge (from a push), replacing an earlier copy
    /// of the same one; what the screen shows of it.
    pub fn hold(&mut self, challenge: Challenge) -> Shown {
        let shown = Shown::of(&challenge, self.locale);
        self.held.retain(|c| c.claims.cid != challenge.claims.cid);
        self.held.push(challenge);
        shown
    }

    /// What a pull returned is now everything held (the server's view is
    /// complete); what the screen shows.
    pub fn replace(&mut self, challenges: Vec<Challenge>) -> Vec<Shown> {
        self.held = challenges;
        self.held
            .iter()
            .map(|c| Shown::of(c, self.locale))
            .collect()
    }

    /// What is held and not expired at `now`; expired logins are let go.
    pub fn pending(&mut self, now: i64) -> Vec<Shown> {
        self.held.retain(|c| c.claims.exp > now);
        self.held
            .iter()
            .map(|c| Shown::of(c, self.locale))
            .collect()
    }

    /// The held challenge `id`.
    pub fn get(&self, id: &str) -> Option<&Challenge> {
        self.held.iter().find(|c| c.claims.cid == id)
    }

    /// The login `id` was answered: no longer held.
    pub fn answered(&mut self, id: &str) {
        self.held.retain(|c| c.claims.cid != id);
    }

    /// A verified push: a challenge is held (what the screen shows of it),
    /// a withdrawal lets its login go (issue 15: answered elsewhere,
    /// superseded or expired).
    pub fn receive(&mut self, pushed: crate::protocol::Pushed) -> Option<Shown> {
        match pushed {
            crate::protocol::Pushed::Challenge(c) => Some(self.hold(*c)),
            crate::protocol::Pushed::Withdrawn(w) => {
                self.answered(&w.cid);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use potvrda_proto::jose::{ChallengeClaims, LoginContext, OwnService};

    fn challenge(cid: &str, exp: i64) -> Challenge {
        Challenge {
            claims: ChallengeClaims {
                cid: cid.into(),
                nonce: "n".into(),
                sub: "ana".into(),
                aud: "dev".into(),
                ctx: LoginContext {
                    service: Some("eUprava".into()),
                    ..LoginContext::default()
                },
                iat: 0,
                exp,
                risk: None,
            },
            jws: format!("jws-{cid}"),
        }
    }

    #[test]
    fn potvrdas_own_services_are_named_in_the_phones_language() {
        let mut counter = challenge("c", 100);
        counter.claims.ctx = LoginContext {
            // What the server wrote for a device it knows in English.
            service: Some("Counter".into()),
            own_service: Some(OwnService::Counter),
            ..LoginContext::default()
        };
        let mut nameless = challenge("n", 100);
        nameless.claims.ctx = LoginContext::default();
        let mut inbox = Inbox::new();
        inbox.set_locale(Locale::SrCyrl);
        assert_eq!(inbox.hold(counter.clone()).service, "Шалтер");
        assert_eq!(inbox.hold(nameless.clone()).service, "еУправа");
        inbox.set_locale(Locale::Hu);
        assert_eq!(inbox.hold(counter).service, "Ügyfélszolgálati pult");
        inbox.set_locale(Locale::SrLatn);
        assert_eq!(inbox.hold(nameless).service, "eUprava");
        // A relying party's registered name is shown as registered.
        let mut rp = challenge("r", 100);
        rp.claims.ctx.service = Some("Паркинг Нови Сад".into());
        assert_eq!(inbox.hold(rp).service, "Паркинг Нови Сад");
    }

    #[test]
    fn a_login_is_held_once_until_answered_or_expired() {
        let mut inbox = Inbox::new();
        let shown = inbox.hold(challenge("a", 100));
        assert_eq!(
            (shown.id.as_str(), shown.service.as_str()),
            ("a", "eUprava")
        );
        // Pushed twice (a retried delivery): held once, the newer copy.
        let mut again = challenge("a", 100);
        again.jws = "newer".into();
        inbox.hold(again);
        inbox.hold(challenge("b", 50));
        assert_eq!(inbox.pending(10).len(), 2);
        assert_eq!(inbox.get("a").map(|c| c.jws.as_str()), Some("newer"));
        // Expired at its `exp`: let go.
        let left: Vec<String> = inbox.pending(50).into_iter().map(|s| s.id).collect();
        assert_eq!(left, ["a"]);
        assert!(inbox.get("b").is_none());
        inbox.answered("a");
        assert!(inbox.pending(10).is_empty());
        // A pull is the whole truth.
        inbox.hold(challenge("c", 100));
        let pulled = inbox.replace(vec![challenge("d", 100)]);
        assert_eq!(pulled.len(), 1);
        assert!(inbox.get("c").is_none() && inbox.get("d").is_some());
    }

    #[test]
    fn a_withdrawal_lets_its_login_go() {
        use crate::protocol::{Pushed, Withdrawal};
        use potvrda_proto::jose::WithdrawalReason;
        let mut inbox = Inbox::new();
        let shown = inbox.receive(Pushed::Challenge(Box::new(challenge("a", 100))));
        assert_eq!(shown.map(|s| s.id), Some("a".to_owned()));
        inbox.hold(challenge("b", 100));
        let gone = Withdrawal {
            cid: "a".into(),
            reason: WithdrawalReason::Answered,
        };
        assert_eq!(inbox.receive(Pushed::Withdrawn(gone)), None);
        let left: Vec<String> = inbox.pending(10).into_iter().map(|s| s.id).collect();
        assert_eq!(left, ["b"], "only the withdrawn login goes");
    }
}
