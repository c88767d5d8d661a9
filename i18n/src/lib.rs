//! Potvrda's messages as data (issue 16): every string shown to a person
//! — the pages, the printed sheet, the phone's prompt, the push
//! notification, the companion, `potvrda-device` — comes from a Fluent
//! catalogue (`locales/*.ftl`), one per [`Locale`].
//!
//! - `sr-Cyrl` (Serbian in Cyrillic, the official script) is the source and
//!   the default; `sr-Latn` is made from it by the exact Serbian
//!   transliteration ([`transliterate`]), with `sr-Latn.ftl` overriding
//!   the messages where the transliteration is not what a reader expects.
//! - `en` and `hu` (the first minority language of Vojvodina) are
//!   translations.
//! - [`Locale::negotiate`] chooses from `Accept-Language` or OpenID
//!   Connect's `ui_locales`; [`Catalog::text`] formats a message, with
//!   Fluent's plural rules for its numbers.
//!
//! A message missing from a catalogue is a test failure
//! (`tests::every_locale_has_every_message`), never a silent fallback to
//! another language: a page never mixes two.

#![forbid(unsafe_code)]

#[cfg(feature = "catalog")]
mod catalog;
mod locale;
mod translit;

#[cfg(feature = "catalog")]
pub use catalog::{Arg, Catalog, catalog};
pub use locale::{Locale, UnknownLocale};
pub use translit::transliterate;

/// Messages that are names, the same in several locales (the brand); every
/// other message of several words differs from the other locales'
/// (`tests::nothing_is_left_untranslated`): one word may be the same
/// ("administrator", "Platform"), a sentence is a translation.
pub const NAMES: &[&str] = &["brand"];

/// Whether `text` is words enough to tell its language: a dozen characters
/// or more, with a space.
pub fn sentence(text: &str) -> bool {
    text.chars().count() >= 12 && text.trim().contains(' ')
}

/// A message's id, where the domain names what a person is told and the
/// page says it in their language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Msg(pub &'static str);

/// A page's translator: what its templates call (`tr.t("login-title")`).
#[cfg(feature = "catalog")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tr(pub Locale);

#[cfg(feature = "catalog")]
impl Tr {
    /// Message `id`.
    pub fn t(&self, id: &str) -> String {
        catalog().text(self.0, id)
    }

    /// Message `id` with one text argument.
    pub fn t1(&self, id: &str, name: &str, value: &str) -> String {
        catalog().text_with(self.0, id, &[(name, Arg::Text(value))])
    }

    /// Message `id` with two text arguments.
    pub fn t2(&self, id: &str, a: &str, a_value: &str, b: &str, b_value: &str) -> String {
        catalog().text_with(
            self.0,
            id,
            &[(a, Arg::Text(a_value)), (b, Arg::Text(b_value))],
        )
    }

    /// Message `id` with a number (its plural form).
    pub fn n(&self, id: &str, name: &str, value: i64) -> String {
        catalog().text_with(self.0, id, &[(name, Arg::Number(value))])
    }

    /// A domain message.
    pub fn msg(&self, m: &Msg) -> String {
        self.t(m.0)
    }

    /// The page's `lang`.
    pub fn lang(&self) -> &'static str {
        self.0.tag()
    }
}
