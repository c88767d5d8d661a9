@file:Suppress("unused", "UNUSED_PARAMETER")

package android.content

open class Context
