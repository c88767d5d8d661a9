@file:Suppress("unused")

package android.os

object Build {
    const val MODEL = "Pixel"
}
