@file:Suppress("unused", "UNUSED_PARAMETER")

package org.unifiedpush.android.connector

open class MessagingReceiver {
    open fun onMessage(context: android.content.Context, message: ByteArray, instance: String) {}
}
