@file:Suppress("unused", "UNUSED_PARAMETER")

package androidx.biometric

class BiometricPrompt(
    activity: androidx.fragment.app.FragmentActivity,
    executor: java.util.concurrent.Executor,
    callback: AuthenticationCallback,
) {
    class AuthenticationResult
    abstract class AuthenticationCallback {
        open fun onAuthenticationSucceeded(result: AuthenticationResult) {}
        open fun onAuthenticationError(code: Int, message: CharSequence) {}
    }
    class PromptInfo {
        class Builder {
            fun setTitle(title: CharSequence) = this
            fun setSubtitle(subtitle: CharSequence) = this
            fun setAllowedAuthenticators(authenticators: Int) = this
            fun build() = PromptInfo()
        }
    }
    fun authenticate(info: PromptInfo) {}
}

class BiometricManager {
    object Authenticators {
        const val BIOMETRIC_STRONG = 15
        const val DEVICE_CREDENTIAL = 32768
    }
}
