"""A citizen's first login, through the generated Python bindings alone.

Run by the end-to-end test `mobile::python_bindings_enroll_and_approve_a_login`
against a live server, with PYTHONPATH at the generated bindings and these
in the environment: POTVRDA_URL, POTVRDA_ACTIVATION (the sheet's QR text),
POTVRDA_USERNAME, POTVRDA_PASSWORD. The app's side (keys, verification,
signing, parsing) is the library's; the HTTP stack is Python's own, as a
phone app's would be its own. Exits non-zero on the first failed check.
"""

import base64
import http.server
import json
import os
import queue
import threading
import urllib.error
import urllib.request

import potvrda_mobile_ffi as core


def send(request):
    """Send a core-built request with urllib; hand the answer back."""
    req = urllib.request.Request(
        request.url,
        data=bytes(request.body) if request.body else None,
        method=request.method,
        headers={h.name: h.value for h in request.headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return core.HttpResponse(status=resp.status, body=resp.read())
    except urllib.error.HTTPError as err:
        return core.HttpResponse(status=err.code, body=err.read())


def push_service():
    """A Web Push endpoint on this machine: the raw RFC 8291 bodies the
    server POSTs, in the order they arrive."""
    bodies = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            bodies.put(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/push/python", bodies


def next_login(device, bodies):
    """The next pushed login, past the withdrawals of superseded ones."""
    while True:
        event = device.receive_push(bodies.get(timeout=10))
        if isinstance(event, core.PushEvent.LOGIN):
            return event


def add_second_device(device, bodies, access_token):
    """A second phone through the bindings, approved from the first (the
    citizen's own device addition); it is woken by Web Push at its own
    endpoint. The first phone's pushes arrive in `bodies`."""
    req = urllib.request.Request(
        os.environ["POTVRDA_URL"] + "/v1/me/devices/additions",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + access_token},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        asked = json.loads(resp.read())
    shown = next_login(device, bodies)
    request = (
        device.approve_code(shown.login.id, asked["code"])
        if asked.get("code")
        else device.approve(shown.login.id, asked["number"])
    )
    assert device.answer_outcome(shown.login.id, send(request)) == core.Outcome.APPROVED
    req = urllib.request.Request(
        os.environ["POTVRDA_URL"] + f"/v1/me/devices/additions/{asked['request_id']}?wait=0",
        headers={"Authorization": "Bearer " + access_token},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        code = json.loads(resp.read())["activation_code"]
    endpoint2, bodies2 = push_service()
    tablet = core.new_software_keystore(os.urandom(32))
    phone2 = core.Device(tablet.keystore, Citizen(), True)
    request = phone2.enrollment_request(
        code, os.environ["POTVRDA_URL"], "Python 2", "python", core.PushMode.WEB_PUSH(endpoint2)
    )
    phone2.finish_enrollment(send(request))
    return phone2, bodies2


def portal(method, path, body=None, token=None):
    """The portal's side of the login (not the app's): plain JSON over HTTP,
    authenticated as the registered portal client (protocol 3)."""
    client = os.environ["POTVRDA_PORTAL_CLIENT"] + ":" + os.environ["POTVRDA_PORTAL_SECRET"]
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(client.encode()).decode(),
    }
    if token:
        headers["Login-Secret"] = token
    req = urllib.request.Request(
        os.environ["POTVRDA_URL"] + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers=headers,
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


class Citizen(core.UserVerification):
    """The biometric prompt: answers as told, remembers what it was shown."""

    def __init__(self):
        self.answer = True
        self.shown = []

    def method(self):
        return core.Verification.FINGERPRINT

    def confirm(self, reason):
        self.shown.append(reason)
        return self.answer


def main():
    # RFC 8291 Appendix A, through the bindings.
    body = base64.urlsafe_b64decode(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmY"
        "WAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexS"
        "gSxsj_Qulcy4a-fN=="
    )
    plain = core.decrypt_web_push(
        "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94", "BTBZMqHH6r4Tts7J_aSIgg", body
    )
    assert plain == b"When I grow up, I want to be a watermelon", plain
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    try:
        core.decrypt_web_push(
            "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94", "BTBZMqHH6r4Tts7J_aSIgg", tampered
        )
        raise AssertionError("a tampered push decrypted")
    except core.ApiError.PushUndecryptable:
        pass

    # A sheet that is not ours is refused before anything is sent.
    wrapping = os.urandom(32)
    key = core.new_software_keystore(wrapping)
    citizen = Citizen()
    device = core.Device(key.keystore, citizen, True)
    try:
        device.enrollment_request(
            "potvrda://activate?server=http%3A%2F%2Fevil.example&code=ABCD-EFGH-JKMN",
            None, "x", "python", core.PushMode.PULL(),
        )
        raise AssertionError("an http server off this machine was accepted")
    except core.ApiError.InvalidActivation:
        pass

    # Enroll from the QR text.
    request = device.enrollment_request(
        os.environ["POTVRDA_ACTIVATION"], None, "Python", "python", core.PushMode.PULL()
    )
    assert request.method == "POST" and request.url.endswith("/v1/enrollments"), request
    enrolled = device.finish_enrollment(send(request))
    assert enrolled.username == os.environ["POTVRDA_USERNAME"], enrolled
    assert len(enrolled.recovery_codes) == 10, enrolled

    # The app restarts: the state and the sealed key are all it kept.
    state = device.state()
    assert "recovery" not in state
    device = core.Device.restore(
        state, core.open_software_keystore(key.sealed, wrapping), citizen, True
    )
    assert device.device_id() == enrolled.device_id

    # The push subscription after enrollment (protocol 3, issue 15): none yet, then a
    # Web Push endpoint (the core makes its keys), then none again.
    assert device.read_push_status(send(device.push_status_request())) == core.PushReachability.PULL_ONLY
    request = device.push_request(core.PushMode.WEB_PUSH("http://127.0.0.1:9/push/python"))
    assert request.method == "PUT" and request.url.endswith("/push"), request
    assert device.finish_push_change(send(request)) == core.PushReachability.ACTIVE
    assert "python" in device.state(), "the new push keys are kept with the state"
    assert device.read_push_status(send(device.push_status_request())) == core.PushReachability.ACTIVE
    request = device.push_request(core.PushMode.WEB_PUSH("https://push.evil.example/x"))
    try:
        device.finish_push_change(send(request))
        raise AssertionError("a push service off the allow-list was accepted")
    except core.ApiError.Server as e:
        assert "invalid_push_subscription" in str(e), e
    request = device.push_request(core.PushMode.PULL())
    assert request.method == "DELETE", request
    assert device.finish_push_change(send(request)) == core.PushReachability.PULL_ONLY

    # The portal starts a login; the phone pulls it and shows its context.
    login = portal(
        "POST",
        "/v1/logins",
        {
            "username": os.environ["POTVRDA_USERNAME"],
            "password": os.environ["POTVRDA_PASSWORD"],
            "context": {"ip": "198.51.100.4"},
        },
    )
    pending = device.receive_pending(send(device.pending_request()))
    assert len(pending) == 1, pending
    shown = pending[0]
    assert (shown.service, shown.ip, shown.username) == (
        os.environ["POTVRDA_PORTAL_NAME"],
        "198.51.100.4",
        os.environ["POTVRDA_USERNAME"],
    ), shown
    assert send(device.seen_request(shown.id)).status == 204

    # The phone's language (issue 16): the prompt speaks it; an unknown
    # one is refused and changes nothing.
    try:
        device.set_locale("xx")
        raise AssertionError("an unknown language was accepted")
    except core.ApiError.UnknownLocale:
        pass
    device.set_locale("hu")

    # Without the citizen's confirmation nothing is signed.
    citizen.answer = False
    try:
        device.approve(shown.id, login["number"])
        raise AssertionError("approved without the citizen's confirmation")
    except core.ApiError.NotConfirmed:
        pass
    try:
        device.approve(shown.id, 5)
        raise AssertionError("a one-digit number was accepted")
    except core.ApiError.NumberRequired:
        pass
    citizen.answer = True
    answer = device.approve(shown.id, login["number"])
    outcome = device.answer_outcome(shown.id, send(answer))
    assert outcome == core.Outcome.APPROVED, outcome
    assert any(os.environ["POTVRDA_PORTAL_NAME"] in reason for reason in citizen.shown), citizen.shown
    want = "A bejelentkezés megerősítése: " + os.environ["POTVRDA_PORTAL_NAME"]
    assert citizen.shown[-1] == want, citizen.shown
    assert '"locale":"hu"' in device.state(), "the language is kept with the state"
    assert device.pending_logins() == []

    # The portal's login is approved and carries a token.
    status = portal(
        "GET", f"/v1/logins/{login['login_id']}?wait=0", token=login["login_secret"]
    )
    assert status["status"] == "approved" and status.get("access_token"), status
    # The token says what the phone proved (protocol 3): its key in software
    # (this keystore), the citizen present, confirmed by fingerprint.
    payload = status["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["amr"] == ["pwd", "swk", "user", "fpt", "mfa"], claims["amr"]

    # The same approval again is refused by the server (replay).
    replay = send(answer)
    assert replay.status >= 400, replay.status
    try:
        device.answer_outcome(shown.id, replay)
        raise AssertionError("a replayed approval was read as a success")
    except core.ApiError.Server as err:
        assert err.status == replay.status

    # Woken by Web Push (issue 15): the core made the subscription's keys and
    # decrypts. A newer login supersedes the first: its prompt is withdrawn.
    endpoint, bodies = push_service()
    request = device.push_request(core.PushMode.WEB_PUSH(endpoint))
    assert device.finish_push_change(send(request)) == core.PushReachability.ACTIVE
    start = lambda: portal(
        "POST",
        "/v1/logins",
        {"username": os.environ["POTVRDA_USERNAME"], "password": os.environ["POTVRDA_PASSWORD"]},
    )
    start()
    first = device.receive_push(bodies.get(timeout=10))
    assert isinstance(first, core.PushEvent.LOGIN), first
    start()
    events = [device.receive_push(bodies.get(timeout=10)) for _ in range(2)]
    withdrawn = [e for e in events if isinstance(e, core.PushEvent.WITHDRAWN)]
    assert len(withdrawn) == 1, events
    assert withdrawn[0].id == first.login.id, (withdrawn, first)
    assert withdrawn[0].reason == core.Withdrawn.SUPERSEDED, withdrawn
    left = device.pending_logins()
    assert len(left) == 1 and left[0].id != first.login.id, left

    # A second phone, approved from the first: when the first answers a
    # login, the second is told to drop its prompt (withdrawn, `answered`).
    phone2, bodies2 = add_second_device(device, bodies, status["access_token"])
    login = start()
    on_first = next_login(device, bodies)
    on_second = phone2.receive_push(bodies2.get(timeout=10))
    assert isinstance(on_second, core.PushEvent.LOGIN), on_second
    assert on_first.login.id == on_second.login.id
    answer = device.approve(on_first.login.id, login["number"])
    assert device.answer_outcome(on_first.login.id, send(answer)) == core.Outcome.APPROVED
    gone = phone2.receive_push(bodies2.get(timeout=10))
    assert isinstance(gone, core.PushEvent.WITHDRAWN), gone
    assert (gone.id, gone.reason) == (on_second.login.id, core.Withdrawn.ANSWERED), gone
    assert phone2.pending_logins() == [], "the second phone's prompt is gone"
    # The phone that answered got no withdrawal: its next push is a new login.
    start()
    following = device.receive_push(bodies.get(timeout=10))
    assert isinstance(following, core.PushEvent.LOGIN), following
    print("python bindings: enrolled and approved", enrolled.device_id)


if __name__ == "__main__":
    main()
