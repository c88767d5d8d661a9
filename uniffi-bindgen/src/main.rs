//! `uniffi-bindgen`, built from the workspace so that the generated Kotlin,
//! Swift and Python match the uniffi version `potvrda-mobile-ffi` is built
//! with: `scripts/bindings.sh` runs it.
#![forbid(unsafe_code)]

fn main() {
    uniffi::uniffi_bindgen_main()
}
