@file:Suppress("unused", "UNUSED_PARAMETER")

package android.view

open class View {
    var visibility: Int = VISIBLE
    companion object {
        const val VISIBLE = 0
        const val GONE = 8
    }
}
