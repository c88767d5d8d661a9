//! The OpenAPI 3.1 description of the HTTP API, generated from the handlers'
//! annotations and the wire types' schemas (`potvrda-proto`, feature
//! `openapi`), served at `/openapi.json`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, clients, counter, device, lang, login, me, meta, oauth, oidc, sheet};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Potvrda", description = "Password, then a push approval on the phone, then a JWT.", version = "1"),
    paths(
        lang::switch,
        oidc::consent_again,
        oidc::again,
        admin::create_citizen,
        admin::search,
        admin::citizen,
        admin::devices,
        admin::events,
        admin::revoke_device,
        admin::reset,
        admin::confirm_reset,
        me::devices,
        me::revoke_device,
        me::rename_device,
        me::start_addition,
        me::addition_status,
        me::password,
        admin::create_municipality,
        admin::create_staff,
        admin::deactivate,
        admin::lock,
        admin::unlock,
        admin::audit,
        admin::audit_export,
        clients::register,
        clients::list,
        clients::read,
        clients::update,
        clients::rotate,
        clients::retire,
        clients::subject,
        device::enroll,
        device::info,
        device::pending,
        device::set_push,
        device::remove_push,
        device::seen,
        device::respond,
        login::start,
        login::status,
        login::code,
        meta::healthz,
        meta::readyz,
        meta::jwks,
        meta::audit_jwks,
        meta::openapi,
        oidc::discovery,
        oidc::authorize,
        oidc::login,
        oidc::wait,
        oidc::proceed,
        oidc::code,
        oidc::consent,
        oauth::token,
        oauth::par,
        oauth::backchannel,
        oauth::userinfo,
        oauth::introspect,
        oauth::revoke,
        oidc::logout,
        oidc::logout_form,
        oidc::script,
        oidc::logout_script,
        oidc::style,
        sheet::style,
        counter::home,
        counter::login,
        counter::wait,
        counter::proceed,
        counter::again,
        counter::logout,
        counter::search,
        counter::create,
        counter::citizen,
        counter::reset,
        counter::confirm_reset,
        counter::lock,
        counter::unlock,
        counter::revoke,
        counter::style,
        counter::script,
        super::metrics,
    ),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Bootstrap token (admin), an admin API token, or a device's pull token (JWS)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "client_secret_basic: a registered client's id and secret",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_assertion",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Client-Assertion",
                "private_key_jwt: an RFC 7523 assertion signed with the client's registered key",
            ))),
        );
    }
}

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_3_1_with_every_body_schema() {
        let doc = serde_json::to_value(document()).expect("serializable");
        assert_eq!(doc["openapi"], "3.1.0");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for name in [
            "LoginRequest",
            "LoginResponse",
            "EnrollmentRequest",
            "ErrorBody",
            "ErrorCode",
            "LoginStatusResponse",
            "EcJwk",
        ] {
            assert!(schemas.contains_key(name), "{name} schema");
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
