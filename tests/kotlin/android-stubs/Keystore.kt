// The Android (and androidx, OkHttp, UnifiedPush, coroutines) names the
// Kotlin listings of docs/MOBILE.md use, as the smallest stand-ins that let
// them compile against the real generated bindings on a desktop JVM
// (scripts/kotlin.sh). Only signatures: nothing in tests/kotlin/android-stubs runs.
@file:Suppress("unused", "UNUSED_PARAMETER")

package android.security.keystore

class KeyGenParameterSpec private constructor() : java.security.spec.AlgorithmParameterSpec {
    class Builder(alias: String, purposes: Int) {
        fun setAlgorithmParameterSpec(spec: java.security.spec.AlgorithmParameterSpec) = this
        fun setDigests(vararg digests: String) = this
        fun setIsStrongBoxBacked(strongBox: Boolean) = this
        fun build() = KeyGenParameterSpec()
    }
}

object KeyProperties {
    const val PURPOSE_SIGN = 4
    const val DIGEST_SHA256 = "SHA-256"
    const val KEY_ALGORITHM_EC = "EC"
    const val SECURITY_LEVEL_SOFTWARE = 0
}

class KeyInfo : java.security.spec.KeySpec {
    val securityLevel: Int = 0
}
