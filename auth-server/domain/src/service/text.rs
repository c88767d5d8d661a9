//! Input a person types: usernames (suggested from a name in either script,
//! normalised), activation codes, names, e-mail, phone, the login context.

use super::*;

/// Groups of four joined by dashes, for reading aloud and typing.
pub(super) fn grouped(s: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// The hash an activation code is stored under, after normalising what a
/// citizen may type (case, dashes, spaces); `None` when it cannot be a code.
pub fn code_hash(code: &str) -> Option<String> {
    potvrda_proto::limits::normalize_code(code, CODE_LEN).map(|norm| sha256_b64(norm.as_bytes()))
}

/// Suggestions tried before giving up (then the official chooses one).
pub(super) const SUGGESTION_TRIES: u32 = 50;

/// `ime.prezime` from a name in Serbian Latin or Cyrillic script: letters
/// transliterated to ASCII (č, ć → c; đ → dj; š → s; ž → z; Cyrillic as in
/// the official Latin transliteration), words joined with dots; at most 48
/// characters, `korisnik` when nothing usable is left.
pub fn suggest_username(display_name: &str) -> String {
    let mut out = String::new();
    let mut word = false;
    for c in display_name.chars().flat_map(char::to_lowercase) {
        let latin = match c {
            'a'..='z' | '0'..='9' => c.to_string(),
            'č' | 'ć' | 'ч' | 'ћ' | 'ц' => "c".into(),
            'š' | 'ш' => "s".into(),
            'ž' | 'ж' | 'з' => "z".into(),
            'đ' | 'ђ' => "dj".into(),
            'а' => "a".into(),
            'б' => "b".into(),
            'в' => "v".into(),
            'г' => "g".into(),
            'д' => "d".into(),
            'е' => "e".into(),
            'и' => "i".into(),
            'ј' => "j".into(),
            'к' => "k".into(),
            'л' => "l".into(),
            'љ' => "lj".into(),
            'м' => "m".into(),
            'н' => "n".into(),
            'њ' => "nj".into(),
            'о' => "o".into(),
            'п' => "p".into(),
            'р' => "r".into(),
            'с' => "s".into(),
            'т' => "t".into(),
            'у' => "u".into(),
            'ф' => "f".into(),
            'х' => "h".into(),
            'џ' => "dz".into(),
            _ => String::new(),
        };
        if latin.is_empty() {
            word = false;
            continue;
        }
        if !word && !out.is_empty() {
            out.push('.');
        }
        word = true;
        out.push_str(&latin);
    }
    let mut out: String = out.chars().take(48).collect();
    while out.ends_with('.') {
        out.pop();
    }
    if out.len() < 3 {
        "korisnik".into()
    } else {
        out
    }
}

/// Usernames: 3–64 of `a-z 0-9 . _ -`, starting with a letter or digit, lower-cased.
pub fn normalize_username(raw: &str) -> Result<String> {
    let u = raw.trim().to_ascii_lowercase();
    let ok = (3..=MAX_USERNAME_LEN).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && u.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(u)
    } else {
        Err(Error::InvalidRequest(
            "username must be 3-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit".into(),
        ))
    }
}

pub(super) fn clean_text(field: &str, v: &str, max: usize) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(format!(
            "{field} must be 1-{max} bytes without control characters"
        )));
    }
    Ok(v.to_owned())
}

/// An e-mail address as people type it: one `@`, no spaces, at most 254 bytes.
pub(super) fn clean_email(v: &str) -> Result<String> {
    let v = v.trim();
    let ok = v.len() <= 254
        && v.split('@').count() == 2
        && v.split('@').all(|part| !part.is_empty())
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| v.to_owned())
        .ok_or_else(|| Error::InvalidRequest("email is not an e-mail address".into()))
}

/// A phone number in international form: `+` and 6-15 digits (E.164).
pub(super) fn clean_phone(v: &str) -> Result<String> {
    let digits: String = v
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    let ok = digits
        .strip_prefix('+')
        .is_some_and(|d| (6..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(digits).ok_or_else(|| {
        Error::InvalidRequest("phone must be +<country><number>, 6-15 digits".into())
    })
}

pub(super) fn clean_context(ctx: LoginContext) -> Result<LoginContext> {
    let f = |name: &str, v: Option<String>| -> Result<Option<String>> {
        v.map(|v| clean_text(name, &v, MAX_CONTEXT_FIELD_LEN))
            .transpose()
    };
    Ok(LoginContext {
        ip: f("context.ip", ctx.ip)?,
        user_agent: f("context.user_agent", ctx.user_agent)?,
        service: f("context.service", ctx.service)?,
        binding_message: f("binding_message", ctx.binding_message)?,
        // Only the server names its own services (`Purpose`).
        own_service: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_suggested_from_names_in_either_script() {
        assert_eq!(suggest_username("Đorđe Čolić"), "djordje.colic");
        assert_eq!(suggest_username("Јелена Петровић"), "jelena.petrovic");
        assert_eq!(suggest_username("  Ana-Marija  Žižić "), "ana.marija.zizic");
        assert_eq!(
            suggest_username("Љубица Његош Џаковић"),
            "ljubica.njegos.dzakovic"
        );
        assert_eq!(suggest_username("李"), "korisnik");
        let long = suggest_username(&"Jovanović ".repeat(10));
        assert!(long.len() <= 48 && !long.ends_with('.'), "{long}");
        for name in ["Đorđe Čolić", "Јелена Петровић", &"x ".repeat(40)] {
            let s = suggest_username(name);
            assert!(normalize_username(&s).is_ok(), "{s}");
        }
    }

    #[test]
    fn usernames() {
        assert_eq!(normalize_username(" Jelena.P ").expect("valid"), "jelena.p");
        for bad in ["ab", ".dot", "a b c", "ćirilica", &"x".repeat(65)] {
            assert!(normalize_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn activation_codes_normalise_and_reject_garbage() {
        let h = code_hash("ABCD-EFGH-JKMN").expect("valid");
        assert_eq!(code_hash("abcd efgh jkmn"), Some(h.clone()));
        assert_eq!(code_hash("ABCDEFGHJKMN"), Some(h));
        assert_eq!(
            code_hash("ABCD-EFGH-JKM0"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(code_hash("ABCD"), None);
    }

    #[test]
    fn grouping_and_constant_time_eq() {
        assert_eq!(grouped("abcdefghij"), "abcd-efgh-ij");
        assert!(ct_eq_str("abc", "abc"));
        assert!(!ct_eq_str("abc", "abd"));
        assert!(!ct_eq_str("abc", "abcd"));
    }
}
