// A citizen's phone, in Kotlin, through the generated bindings alone (issue
// 15): the same generated code an Android app loads, run on a desktop JVM
// with JNA against the built libpotvrda_mobile_ffi.so. The app's transport
// is the JDK's HttpClient; its push endpoint the JDK's HttpServer, which
// receives the raw RFC 8291 messages the server sends (a UnifiedPush
// distributor's role). Run by `mobile::kotlin_bindings_enroll_push_approve_and_report_fraud`
// with POTVRDA_URL, POTVRDA_ACTIVATION (the sheet's QR text),
// POTVRDA_USERNAME, POTVRDA_PASSWORD, POTVRDA_PORTAL_CLIENT and
// POTVRDA_PORTAL_SECRET in the environment. Exits non-zero on the first
// failed check.

import com.sun.net.httpserver.HttpServer
import java.net.InetSocketAddress
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest as JdkRequest
import java.net.http.HttpResponse as JdkResponse
import java.util.Base64
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import rs.potvrda.core.*

val http: HttpClient = HttpClient.newHttpClient()

fun env(name: String): String = System.getenv(name) ?: error("$name is not set")

fun check(ok: Boolean, what: () -> String) {
    if (!ok) error("check failed: ${what()}")
}

/** Send a request the core built; hand the answer back to the core. */
fun send(request: HttpRequest): HttpResponse {
    val builder = JdkRequest.newBuilder(URI.create(request.url))
    for (h in request.headers) builder.header(h.name, h.value)
    val body = if (request.body.isEmpty()) JdkRequest.BodyPublishers.noBody()
        else JdkRequest.BodyPublishers.ofByteArray(request.body)
    builder.method(request.method, body)
    val answer = http.send(builder.build(), JdkResponse.BodyHandlers.ofByteArray())
    return HttpResponse(answer.statusCode().toUShort(), answer.body())
}

/** The portal's side (not the app's): its registered client starts a login. */
fun startLogin(): Map<String, String> {
    val client = env("POTVRDA_PORTAL_CLIENT") + ":" + env("POTVRDA_PORTAL_SECRET")
    val json = """{"username":"${env("POTVRDA_USERNAME")}","password":"${env("POTVRDA_PASSWORD")}"}"""
    val request = JdkRequest.newBuilder(URI.create(env("POTVRDA_URL") + "/v1/logins"))
        .header("Content-Type", "application/json")
        .header("Authorization", "Basic " + Base64.getEncoder().encodeToString(client.toByteArray()))
        .POST(JdkRequest.BodyPublishers.ofString(json))
        .build()
    val answer = http.send(request, JdkResponse.BodyHandlers.ofString())
    check(answer.statusCode() == 201) { "login: ${answer.statusCode()} ${answer.body()}" }
    return Regex("\"(\\w+)\":(\"[^\"]*\"|\\d+)").findAll(answer.body())
        .associate { it.groupValues[1] to it.groupValues[2].trim('"') }
}

/** The biometric prompt: answers as told. */
class Citizen : UserVerification {
    @Volatile var answer = true
    override fun confirm(reason: String): Boolean = answer
    override fun method(): Verification = Verification.FINGERPRINT
}

fun main() {
    // The push endpoint: the raw RFC 8291 bodies, in the order they arrive.
    val bodies = LinkedBlockingQueue<ByteArray>()
    val endpoint = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
    endpoint.createContext("/push/") { exchange ->
        bodies.put(exchange.requestBody.readAllBytes())
        exchange.sendResponseHeaders(201, -1)
        exchange.close()
    }
    endpoint.start()
    val pushUrl = "http://127.0.0.1:${endpoint.address.port}/push/kotlin"
    fun nextPush(): ByteArray = bodies.poll(10, TimeUnit.SECONDS) ?: error("no push within 10 s")

    // The device key in the core's software keystore, sealed under the
    // platform's wrapping key (an Android app: a Keystore-backed key).
    val key = newSoftwareKeystore(ByteArray(32) { 7 })
    val citizen = Citizen()
    val device = Device(key.keystore, citizen, true)

    // Enroll from the sheet's QR text, woken by Web Push at our endpoint.
    val enrolled = device.finishEnrollment(
        send(device.enrollmentRequest(env("POTVRDA_ACTIVATION"), null, "Kotlin", "android", PushMode.WebPush(pushUrl)))
    )
    check(enrolled.username == env("POTVRDA_USERNAME")) { "enrolled as ${enrolled.username}" }
    check(device.readPushStatus(send(device.pushStatusRequest())) == PushReachability.ACTIVE) { "push active" }

    // A login is pushed; the core decrypts and verifies it.
    val login = startLogin()
    val event = device.receivePush(nextPush())
    check(event is PushEvent.Login) { "a login: $event" }
    val shown = (event as PushEvent.Login).login
    check(shown.username == env("POTVRDA_USERNAME")) { "shown: $shown" }

    // The citizen says no to the biometric prompt: nothing is signed.
    citizen.answer = false
    try {
        device.approve(shown.id, login.getValue("number").toUByte())
        error("approved although the citizen said no")
    } catch (e: ApiException.NotConfirmed) {
        // as it must
    }
    citizen.answer = true
    val outcome = device.answerOutcome(shown.id, send(device.approve(shown.id, login.getValue("number").toUByte())))
    check(outcome == Outcome.APPROVED) { "outcome $outcome" }

    // Someone else logs in: the citizen reports it as fraud (the account locks).
    startLogin()
    val other = device.receivePush(nextPush())
    check(other is PushEvent.Login) { "a second login: $other" }
    val fraud = device.answerOutcome((other as PushEvent.Login).login.id, send(device.reportFraud(other.login.id)))
    check(fraud == Outcome.DENIED) { "fraud report: $fraud" }
    endpoint.stop(0)
    println("kotlin bindings: enrolled, pushed, approved and reported fraud ${enrolled.deviceId}")
}
