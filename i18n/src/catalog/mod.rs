//! The catalogues, compiled into the binary and parsed once.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

use crate::{Locale, transliterate};

/// The sources: Serbian in Cyrillic is the one `sr-Latn` is made from.
const SR_CYRL: &str = include_str!("../../locales/sr-Cyrl.ftl");
const SR_LATN_OVERRIDES: &str = include_str!("../../locales/sr-Latn.ftl");
const EN: &str = include_str!("../../locales/en.ftl");
const HU: &str = include_str!("../../locales/hu.ftl");

/// An argument of a message.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// A text (a service's name, a time).
    Text(&'a str),
    /// A number: it selects the plural form.
    Number(i64),
}

/// Every locale's messages.
pub struct Catalog {
    bundles: Vec<(Locale, FluentBundle<FluentResource>)>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::load);

/// The catalogue (parsed on first use).
pub fn catalog() -> &'static Catalog {
    &CATALOG
}

/// The source of `locale`'s catalogue (for `sr-Latn`: transliterated).
fn sources(locale: Locale) -> Vec<String> {
    match locale {
        Locale::SrCyrl => vec![SR_CYRL.to_owned()],
        Locale::SrLatn => vec![transliterate(SR_CYRL), SR_LATN_OVERRIDES.to_owned()],
        Locale::En => vec![EN.to_owned()],
        Locale::Hu => vec![HU.to_owned()],
    }
}

impl Catalog {
    fn load() -> Self {
        let bundles = Locale::ALL
            .into_iter()
            .map(|locale| {
                let id = locale.tag().parse().unwrap_or_default();
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // One direction of text only: no isolation marks in pages.
                bundle.set_use_isolating(false);
                for source in sources(locale) {
                    // A syntax error is caught by the tests (`parses`);
                    // what parses is kept.
                    let resource = FluentResource::try_new(source).unwrap_or_else(|(r, _)| r);
                    bundle.add_resource_overriding(resource);
                }
                (locale, bundle)
            })
            .collect();
        Self { bundles }
    }

    fn bundle(&self, locale: Locale) -> &FluentBundle<FluentResource> {
        let found = self.bundles.iter().find(|(l, _)| *l == locale);
        match found {
            Some((_, b)) => b,
            None => &self.bundles[0].1,
        }
    }

    /// Whether `locale` has message `id`.
    pub fn has(&self, locale: Locale, id: &str) -> bool {
        self.bundle(locale).has_message(id)
    }

    /// Message `id` in `locale`.
    pub fn text(&self, locale: Locale, id: &str) -> String {
        self.text_with(locale, id, &[])
    }

    /// Message `id` in `locale` with its arguments. A message that does
    /// not exist shows as `⟦id⟧` (the tests look for it on every page).
    pub fn text_with(&self, locale: Locale, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        let bundle = self.bundle(locale);
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            return format!("⟦{id}⟧");
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            match value {
                Arg::Text(t) => fluent_args.set(*name, FluentValue::from(*t)),
                Arg::Number(n) => fluent_args.set(*name, FluentValue::from(*n)),
            }
        }
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, Some(&fluent_args), &mut errors)
            .into_owned()
    }

    /// The ids of `locale`'s messages, in source order.
    pub fn ids(&self, locale: Locale) -> Vec<String> {
        let mut ids = Vec::new();
        for source in sources(locale) {
            let resource = FluentResource::try_new(source).unwrap_or_else(|(r, _)| r);
            for entry in resource.entries() {
                if let fluent_syntax::ast::Entry::Message(m) = entry
                    && !ids.iter().any(|i| i == m.id.name)
                {
                    ids.push(m.id.name.to_owned());
                }
            }
        }
        ids
    }

    /// Every message of `locale` whose id starts with `prefix`, formatted
    /// without arguments (the companion's strings, handed to JavaScript).
    pub fn messages(&self, locale: Locale, prefix: &str) -> Vec<(String, String)> {
        self.ids(locale)
            .into_iter()
            .filter(|id| id.starts_with(prefix))
            .map(|id| {
                let text = self.text(locale, &id);
                (id, text)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
