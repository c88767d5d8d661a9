@file:Suppress("unused", "UNUSED_PARAMETER")

package androidx.fragment.app

open class FragmentActivity {
    val mainExecutor: java.util.concurrent.Executor = java.util.concurrent.Executor { it.run() }
    fun runOnUiThread(action: Runnable) = action.run()
}
