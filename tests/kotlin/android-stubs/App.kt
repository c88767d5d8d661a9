// What the listings take from the app around them (its views, its saved
// preferences, its screens) and the coroutine and OkHttp helpers they call
// unqualified; the listings are compiled in this package.
@file:Suppress("unused", "UNUSED_PARAMETER")

package docs.listings

import rs.potvrda.core.Device
import rs.potvrda.core.PendingLogin

typealias Context = android.content.Context
typealias View = android.view.View
typealias FragmentActivity = androidx.fragment.app.FragmentActivity

val hasStrongBox = false
lateinit var device: Device

class Label : android.view.View() {
    var text: CharSequence = ""
    var filters: Array<android.text.InputFilter> = emptyArray()
}
val service = Label()
val account = Label()
val origin = Label()
val message = Label()
val expires = Label()
val notices = Label()
val typed = Label()

object prefs {
    fun edit() = this
    fun putString(key: String, value: String) = this
    fun apply() {}
}

fun showRecoveryCodes(codes: List<String>) {}
fun showApprovalScreen(login: PendingLogin) {}
fun closeApprovalScreen(id: String) {}
fun toast(text: String) {}

fun ByteArray.toRequestBody(): okhttp3.RequestBody = okhttp3.RequestBody()

object Dispatchers {
    val IO = Unit
}
suspend fun <T> withContext(context: Any, block: suspend () -> T): T = block()
