@file:Suppress("unused", "UNUSED_PARAMETER")

package android.text

interface InputFilter {
    class LengthFilter(max: Int) : InputFilter
}
