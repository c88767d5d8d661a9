//! The counter's page templates and what they show of the session.

use super::*;
use crate::http::lang::Chrome;
pub(super) use crate::http::lang::TimeForms;
use crate::service::{Desk, DeskView};
use askama::Template;
use potvrda_i18n::{Locale, Msg};
use potvrda_proto::api::{CitizenSummary, Role};

/// The staff member in the page header.
pub(super) struct StaffLine {
    pub(super) name: String,
    pub(super) role: &'static str,
    pub(super) municipality: Option<String>,
}

#[derive(Template)]
#[template(path = "counter/login.html")]
pub(super) struct LoginTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) csrf: &'a str,
    pub(super) error: &'a Option<Msg>,
}

#[derive(Template)]
#[template(path = "counter/waiting.html")]
pub(super) struct WaitingTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) csrf: &'a str,
    pub(super) number: String,
    pub(super) expires_in: Option<i64>,
    pub(super) time_forms: TimeForms,
    pub(super) can_resend: bool,
}

/// A search result.
pub(super) struct Row {
    pub(super) user_id: String,
    pub(super) username: String,
    pub(super) display_name: String,
    pub(super) locked: bool,
    pub(super) fraud: bool,
}

#[derive(Template)]
#[template(path = "counter/home.html")]
pub(super) struct HomeTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) csrf: &'a str,
    pub(super) staff: StaffLine,
    pub(super) query: &'a str,
    pub(super) results: Option<Vec<Row>>,
    pub(super) error: Option<Msg>,
}

/// A device on the citizen's page.
pub(super) struct DeviceRow {
    pub(super) device_id: String,
    pub(super) name: String,
    pub(super) platform: String,
    pub(super) push: &'static str,
    pub(super) since: String,
}

#[derive(Template)]
#[template(path = "counter/citizen.html")]
pub(super) struct CitizenTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) csrf: &'a str,
    pub(super) staff: StaffLine,
    pub(super) c: CitizenSummary,
    pub(super) created: String,
    pub(super) fraud: Option<String>,
    pub(super) devices: Vec<DeviceRow>,
    pub(super) notice: Option<&'a str>,
    /// Four eyes: (request id, who asked, when, whether this official may confirm).
    pub(super) pending: Option<(String, String, String, bool)>,
    /// The latest security events, for staff of the citizen's municipality.
    pub(super) events: Option<Vec<EventRow>>,
}

#[derive(Template)]
#[template(path = "counter/message.html")]
pub(super) struct MessageTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) title: &'a str,
    pub(super) message: &'a str,
}

pub(super) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Superadmin => "role-superadmin",
        Role::Admin => "role-admin",
        Role::Official => "role-official",
        Role::Citizen => "role-citizen",
    }
}

pub(super) fn staff_line(desk: &Desk) -> StaffLine {
    match &desk.view {
        DeskView::Staff {
            principal,
            display_name,
            ..
        } => StaffLine {
            name: display_name.clone(),
            role: principal.role().map_or("", role_name),
            municipality: principal.municipality().map(str::to_owned),
        },
        _ => StaffLine {
            name: String::new(),
            role: "",
            municipality: None,
        },
    }
}

impl HomeTpl<'_> {
    /// The sheet's language choices, the page's own first selected.
    pub(super) fn sheet_locales(&self) -> Vec<(&'static str, &'static str, bool)> {
        sheet_locales(self.chrome.tr.0)
    }
}

impl CitizenTpl<'_> {
    /// The sheet's language choices, the page's own first selected.
    pub(super) fn sheet_locales(&self) -> Vec<(&'static str, &'static str, bool)> {
        sheet_locales(self.chrome.tr.0)
    }
}

fn sheet_locales(page: Locale) -> Vec<(&'static str, &'static str, bool)> {
    Locale::ALL
        .into_iter()
        .map(|l| (l.tag(), l.autonym(), l == page))
        .collect()
}
