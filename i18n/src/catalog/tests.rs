use std::collections::BTreeSet;

use fluent_bundle::FluentResource;

use super::{Arg, SR_CYRL, catalog, sources};
use crate::Locale;

fn ids(locale: Locale) -> BTreeSet<String> {
    catalog().ids(locale).into_iter().collect()
}

#[test]
fn every_catalogue_parses() {
    for locale in Locale::ALL {
        for source in sources(locale) {
            if let Err((_, errors)) = FluentResource::try_new(source) {
                panic!("{locale}: {errors:?}");
            }
        }
    }
}

#[test]
fn every_locale_has_every_message() {
    let source = ids(Locale::SrCyrl);
    assert!(source.len() > 150, "{}", source.len());
    for locale in Locale::ALL {
        let have = ids(locale);
        let missing: Vec<_> = source.difference(&have).collect();
        let extra: Vec<_> = have.difference(&source).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{locale}: missing {missing:?}, not in the source {extra:?}"
        );
    }
}

/// A value with every argument filled, to check its script.
fn sample(locale: Locale, id: &str) -> String {
    let args = [
        ("service", Arg::Text("")),
        ("when", Arg::Text("")),
        ("who", Arg::Text("")),
        ("seconds", Arg::Number(5)),
        ("ip", Arg::Text("")),
        ("device", Arg::Text("")),
        ("user", Arg::Text("")),
        ("mode", Arg::Text("")),
        ("path", Arg::Text("")),
        ("endpoint", Arg::Text("")),
        ("error", Arg::Text("")),
        ("fraud", Arg::Text("")),
        ("enter", Arg::Text("")),
        ("stop", Arg::Text("")),
        ("cid", Arg::Text("")),
        ("message", Arg::Text("")),
        ("agent", Arg::Text("")),
    ];
    catalog().text_with(locale, id, &args)
}

#[test]
fn each_serbian_catalogue_keeps_to_its_script() {
    for id in ids(Locale::SrCyrl) {
        let cyrillic = sample(Locale::SrCyrl, &id);
        assert!(
            !cyrillic.chars().any(|c| c.is_ascii_alphabetic()),
            "sr-Cyrl {id}: Latin letters in {cyrillic:?}"
        );
        let latin = sample(Locale::SrLatn, &id);
        assert!(
            !latin.chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c)),
            "sr-Latn {id}: Cyrillic letters in {latin:?}"
        );
    }
    assert_eq!(
        catalog().text(Locale::SrLatn, "sheet-title"),
        "Vaš nalog za eUpravu"
    );
}

#[test]
fn numbers_take_their_plural_form() {
    let seconds = |l, n| catalog().text_with(l, "waiting-time", &[("seconds", Arg::Number(n))]);
    assert_eq!(seconds(Locale::SrCyrl, 1), "Захтев важи још 1 секунду.");
    assert_eq!(seconds(Locale::SrCyrl, 3), "Захтев важи још 3 секунде.");
    assert_eq!(seconds(Locale::SrCyrl, 11), "Захтев важи још 11 секунди.");
    assert_eq!(seconds(Locale::SrCyrl, 21), "Захтев важи још 21 секунду.");
    assert_eq!(seconds(Locale::SrLatn, 22), "Zahtev važi još 22 sekunde.");
    assert_eq!(
        seconds(Locale::En, 1),
        "The request is valid for 1 more second."
    );
    assert_eq!(
        seconds(Locale::En, 30),
        "The request is valid for 30 more seconds."
    );
    assert_eq!(
        seconds(Locale::Hu, 30),
        "A kérelem még 30 másodpercig érvényes."
    );
}

#[test]
fn arguments_are_placed_and_a_missing_message_shows() {
    let text = catalog().text_with(
        Locale::En,
        "consent-asking",
        &[("service", Arg::Text("eUprava: porez"))],
    );
    assert_eq!(text, "eUprava: porez wants to know:");
    assert_eq!(
        catalog().text(Locale::Hu, "no-such-message"),
        "⟦no-such-message⟧"
    );
    assert!(SR_CYRL.contains("sheet-title"));
}

#[test]
fn nothing_is_left_untranslated() {
    for id in ids(Locale::SrCyrl) {
        if crate::NAMES.contains(&id.as_str()) {
            continue;
        }
        for (i, a) in Locale::ALL.into_iter().enumerate() {
            for b in Locale::ALL.into_iter().skip(i + 1) {
                let text = catalog().text(a, &id);
                assert!(
                    !crate::sentence(&text) || text != catalog().text(b, &id),
                    "{id}: the same in {a} and {b}: {text:?}"
                );
            }
        }
    }
}
