//! The locales Potvrda speaks, and choosing one from what a browser, a
//! relying party or a device asks for.

use std::fmt;
use std::str::FromStr;

use unic_langid::LanguageIdentifier;

/// A locale with a complete catalogue.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum Locale {
    /// Serbian in Cyrillic: the official script, and the default.
    #[default]
    #[serde(rename = "sr-Cyrl")]
    SrCyrl,
    /// Serbian in Latin script.
    #[serde(rename = "sr-Latn")]
    SrLatn,
    /// English.
    #[serde(rename = "en")]
    En,
    /// Hungarian, in official use in Vojvodina.
    #[serde(rename = "hu")]
    Hu,
}

impl Locale {
    /// Every locale, the default first.
    pub const ALL: [Locale; 4] = [Self::SrCyrl, Self::SrLatn, Self::En, Self::Hu];

    /// The BCP 47 tag (`lang` attributes, `ui_locales_supported`).
    pub fn tag(self) -> &'static str {
        match self {
            Self::SrCyrl => "sr-Cyrl",
            Self::SrLatn => "sr-Latn",
            Self::En => "en",
            Self::Hu => "hu",
        }
    }

    /// The locale's name in itself, for a language switch.
    pub fn autonym(self) -> &'static str {
        match self {
            Self::SrCyrl => "Српски (ћирилица)",
            Self::SrLatn => "Srpski (latinica)",
            Self::En => "English",
            Self::Hu => "Magyar",
        }
    }

    /// The locale a language tag asks for, if Potvrda speaks it: Serbian
    /// without a script, or in Serbia, Bosnia or Montenegro's Cyrillic, is
    /// `sr-Cyrl`; Serbian in Latin script, and the Latin-script languages
    /// closest to it (Croatian, Bosnian, Montenegrin), `sr-Latn`.
    pub fn matching(tag: &LanguageIdentifier) -> Option<Self> {
        let latin = tag.script.is_some_and(|s| s.as_str() == "Latn");
        match tag.language.as_str() {
            "sr" if latin => Some(Self::SrLatn),
            "sr" => Some(Self::SrCyrl),
            "hr" | "bs" | "cnr" | "sh" => Some(Self::SrLatn),
            "en" => Some(Self::En),
            "hu" => Some(Self::Hu),
            _ => None,
        }
    }

    /// The first locale of a space-separated list of BCP 47 tags in order
    /// of preference (OpenID Connect's `ui_locales`, a device's languages),
    /// or `None` when Potvrda speaks none of them.
    pub fn first_of(tags: &str) -> Option<Self> {
        tags.split([' ', ','])
            .filter_map(|t| t.trim().parse::<LanguageIdentifier>().ok())
            .find_map(|t| Self::matching(&t))
    }

    /// The locale of a POSIX locale name (`LANG`, `LC_ALL`, `LC_MESSAGES`:
    /// `sr_RS.UTF-8`, `sr_RS@latin`, `hu_HU.UTF-8`, `en_GB`), or `None`
    /// (`C`, `POSIX`, a language Potvrda does not speak).
    pub fn from_posix(name: &str) -> Option<Self> {
        let (base, modifier) = name.split_once('@').unwrap_or((name, ""));
        let base = base.split('.').next().unwrap_or(base);
        let tag = match modifier {
            "latin" => format!("{}-Latn", base.split('_').next().unwrap_or(base)),
            "cyrillic" => format!("{}-Cyrl", base.split('_').next().unwrap_or(base)),
            _ => base.replace('_', "-"),
        };
        Self::first_of(&tag)
    }

    /// The locale an `Accept-Language` header (RFC 9110 §12.5.4) asks for:
    /// by weight, then by order; `q=0` excluded; `None` when none matches.
    pub fn negotiate(accept_language: &str) -> Option<Self> {
        let mut weighted: Vec<(u16, usize, LanguageIdentifier)> = accept_language
            .split(',')
            .enumerate()
            .filter_map(|(i, item)| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim().parse().ok()?;
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q=").map(quality))
                    .unwrap_or(Some(1000))?;
                (q > 0).then_some((q, i, tag))
            })
            .collect();
        weighted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        weighted.iter().find_map(|(_, _, t)| Self::matching(t))
    }
}

/// A quality value in thousandths (`0.8` → 800), `None` when malformed.
fn quality(q: &str) -> Option<u16> {
    let value: f32 = q.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&value)
        .then(|| (value * 1000.0).round() as u16)
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl FromStr for Locale {
    type Err = UnknownLocale;

    /// Exactly one of the four tags (a cookie, a form, a config value).
    fn from_str(s: &str) -> Result<Self, UnknownLocale> {
        Self::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(s))
            .ok_or(UnknownLocale)
    }
}

/// A tag that is none of [`Locale::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownLocale;

impl fmt::Display for UnknownLocale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not one of sr-Cyrl, sr-Latn, en, hu")
    }
}

impl std::error::Error for UnknownLocale {}

#[cfg(test)]
mod tests {
    use super::Locale;

    #[test]
    fn accept_language_by_weight_then_order() {
        use Locale::*;
        assert_eq!(Locale::negotiate("sr-RS,sr;q=0.9,en;q=0.8"), Some(SrCyrl));
        assert_eq!(Locale::negotiate("sr-Latn-RS, en;q=0.5"), Some(SrLatn));
        assert_eq!(Locale::negotiate("de-DE, hu;q=0.7, en;q=0.9"), Some(En));
        assert_eq!(Locale::negotiate("en;q=0.2, hu"), Some(Hu));
        assert_eq!(Locale::negotiate("hu;q=0, en;q=0.1"), Some(En));
        assert_eq!(Locale::negotiate("hr-HR"), Some(SrLatn));
        assert_eq!(Locale::negotiate("de, fr;q=0.5"), None);
        assert_eq!(Locale::negotiate("*, ;q=x, en;q=2"), None);
        assert_eq!(Locale::negotiate(""), None);
    }

    #[test]
    fn ui_locales_in_order() {
        assert_eq!(Locale::first_of("de hu-HU en"), Some(Locale::Hu));
        assert_eq!(Locale::first_of("sr-Latn"), Some(Locale::SrLatn));
        assert_eq!(Locale::first_of("fr de"), None);
    }

    #[test]
    fn posix_locale_names() {
        use Locale::*;
        assert_eq!(Locale::from_posix("sr_RS.UTF-8"), Some(SrCyrl));
        assert_eq!(Locale::from_posix("sr_RS.UTF-8@latin"), Some(SrLatn));
        assert_eq!(Locale::from_posix("sr_ME@latin"), Some(SrLatn));
        assert_eq!(Locale::from_posix("hu_HU.UTF-8"), Some(Hu));
        assert_eq!(Locale::from_posix("en_GB"), Some(En));
        assert_eq!(Locale::from_posix("C.UTF-8"), None);
        assert_eq!(Locale::from_posix("POSIX"), None);
        assert_eq!(Locale::from_posix("de_DE.UTF-8"), None);
    }

    #[test]
    fn tags_round_trip() {
        for l in Locale::ALL {
            assert_eq!(l.tag().parse::<Locale>(), Ok(l));
            assert_eq!(
                serde_json::to_string(&l).ok(),
                Some(format!("\"{}\"", l.tag()))
            );
        }
        assert!("sr".parse::<Locale>().is_err());
    }
}
