# Potvrda — English.

## Shared

brand = eUprava · Potvrda
language = Language
language-apply = Change language
button-continue = Continue
button-next = Continue
field-username = Username
field-password = Password
password-paste = You may paste the password or fill it in from a password manager.

## OpenID Connect login

login-title = Log in
login-for = for
login-hint = After the password, confirm the login on your phone.
waiting-title = Confirm on your phone
waiting-instruction = On your phone, open the login request for { $service } and enter this number:
waiting-number-label = Confirmation number
waiting-number-meaning = Enter the same number on your phone: that is how the phone knows you are confirming this very login.
waiting-time =
    { $seconds ->
        [one] The request is valid for { $seconds } more second.
       *[other] The request is valid for { $seconds } more seconds.
    }
waiting-time-warning = The time to confirm is running out. If you need more time, send a new request.
waiting-expired = The time to confirm has run out. Send a new request to the phone.
waiting-restart = Send a new request to the phone
waiting-continue = Confirmed — continue
waiting-offline = No network on the phone?
waiting-code-label = Code from the app, or a recovery code
waiting-code-submit = Confirm with the code
waiting-not-you = If you did not start this login, choose “Deny” on your phone.
error-wrong-code = Wrong code.
error-wrong-credentials = Wrong username or password.
error-enter-credentials = Enter the username and the password.
login-no-phone = This account has no phone to confirm with. Visit your municipality's counter.
login-too-many = Too many attempts. Wait a few minutes and try again.
consent-title = Consent
consent-asking = { $service } wants to know:
consent-allow = Allow
consent-deny = Deny
scope-openid = who you are (your identifier)
scope-profile = your username and name
scope-email = your e-mail address
scope-phone = your phone number
scope-offline_access = access while you are away
logout-title = Log out
logout-question = Do you want to log out of eUprava?
logout-button = Log me out
logged-out-title = You are logged out
logged-out-message = We are logging you out of the services you were logged in to, too.
logged-out-done = Your session has ended.
logged-out-frame = Logging out of a service
error-cannot-log-in = Cannot log in
error-invalid-request = Invalid request
error-no-session = No session was found. Go back to the service and start again.
error-link-expired = This login link has expired or was already used. Go back to the service and start again.
error-unknown-client = Unknown service: the service that sent you here is not registered.
error-bad-request-object = The service's signed request does not verify. Go back to the service and start again.
error-redirect-not-registered = The return address is not registered for this service.
error-login-expired = This login has expired or was opened in another browser. Go back to the service and start again.

## The counter

counter-brand = eUprava · Potvrda · Counter
counter-title = Counter
counter-login-title = Staff login
counter-login-hint = After the password, confirm the login on your own phone.
counter-waiting-instruction = Open the “Counter” request on your phone and enter this number:
counter-logout = Log out
counter-back = Counter
role-official = official
role-admin = administrator
role-superadmin = chief administrator
search-title = Find a citizen
search-label = Username starts with
search-button = Search
search-none = No match.
col-username = Username
col-name = Name
col-status = Status
status-fraud = Fraud reported
status-locked = Locked
status-active = Active
new-title = New account
new-hint = Check the citizen's ID card. Opening the account prints the sheet with the password and the activation code.
new-username = Username (left empty, one is suggested from the name)
new-name = Full name
new-email = E-mail (optional)
new-phone = Phone (optional)
new-locale = Language and script of the citizen's sheet
new-submit = Open the account and print
citizen-back = Back to the search
fact-email = E-mail
fact-phone = Phone
fact-opened = Opened
fraud-alert = At { $when } the citizen reported a login as fraud from the phone, and the account was locked. Check the citizen's identity before unlocking.
reset-pending = Reset requested by { $who } ({ $when }); a second official must confirm it.
reset-confirm = Confirm the reset and print
reset-awaiting = Waiting for a second official.
action-unlock = Unlock
action-lock = Lock
action-reset = Lost phone: new password and code, print
devices-title = Devices
devices-none = No active device.
col-device = Name
col-platform = Platform
col-push = Notifications
col-since = Since
action-revoke = Revoke
push-on = yes
push-off = no (it polls)
push-gone = unreachable
events-title = Security events
events-hint = The last 30 days, newest first. Before unlocking, check when, from where and into what service a reported login came.
events-none = No events.
col-time = Time
col-what = What
col-address = Address
col-service = Service
col-reason = Reason
event-login-started = login
event-login-approved = approved
event-login-denied = denied
event-login-expired = expired
event-login-failed = failed login
event-fraud-reported = FRAUD REPORTED
event-password-locked = password locked
event-device-enrolled = device enrolled
event-device-revoked = device revoked
event-account-locked = account locked
event-account-unlocked = account unlocked
event-password-changed = password changed
event-recovery-code-used = recovery code
event-offline-code-used = offline code
event-fatigue-paused = notifications paused
event-other = event
event-account-reset = account reset
notice-locked = The account is locked.
notice-unlocked = The account is unlocked.
notice-revoked = The device is revoked.
notice-reset-requested = Reset requested; a second official confirms it.
error-forbidden = Not allowed
error-not-found = Not found
error-not-possible = Not possible
refused-username-taken = This username is taken.
refused-invalid-request = The form's data is not valid.
refused-forbidden = Your role may not do this.
refused-not-found = No such citizen or device.
refused-second-official = A second official must confirm this.
refused-account-locked = The account is locked.
refused-rate-limited = Too many attempts. Try again later.
refused-other = The action was not done.
desk-not-staff = This is not a counter staff account.
desk-account-locked = The account is locked.
desk-no-phone = The account has no phone to confirm with.
desk-too-many = Too many attempts. Wait a few minutes.
desk-session-ended = The session has ended.
desk-login-used = This login was already used.
desk-confirmation-expired = The confirmation expired.
desk-not-confirmed = The login was not confirmed on the phone.

## The citizen's sheet

sheet-title = Your eUprava account
sheet-username = Username
sheet-password = Initial password
sheet-code = Activation code
sheet-expires = Code valid until
sheet-scan = Scan with the Potvrda app
sheet-steps = Instructions
sheet-step-install = Install the Potvrda app on your phone.
sheet-step-activate = In the app, choose “Activate” and scan the code above (or type the activation code).
sheet-step-login = Log in to the eUprava portal with your username and initial password, then change it.
sheet-step-confirm = Confirm every login on your phone by entering the number shown on the screen. If it was not you, choose “Report fraud”.
sheet-footer = This sheet holds secrets: keep it safe, or destroy it after activation.
sheet-print = Print
sheet-back = Back to the counter
role-citizen = citizen

## The browser companion (/app/)

app-title = Potvrda
app-loading = Loading…
app-enroll-title = Activation
app-enroll-intro = Type the activation code from the printed sheet and choose a six-digit PIN.
app-code = Activation code
app-pin = PIN
app-pin-again = PIN again
app-device-name = Device name
app-device-default = Computer
app-activate = Activate
app-recovery-title = Recovery codes
app-recovery-intro = Write them on paper: each replaces an approval once. They are not shown again.
app-codes-done = I wrote them down
app-home-title = Pending logins
app-none = No pending logins.
app-offline-summary = No network? A code for the login
app-offline-show = Show
app-account = Account
app-message = Message
app-address = Address
app-browser = Browser
app-expires = Expires
app-number = Number on the login screen
app-approve = Approve
app-deny = Deny
app-fraud = It was not me
app-wrong-pin = Wrong PIN.
app-pin-locked = The PIN is locked; activate this device again.
app-number-required = Type the number from the login screen.
app-invalid-activation = Invalid activation code.
app-server-refused = The server refused the request:
app-error = Error:
app-pins-differ = The PINs differ.
app-activated = The device is activated.
app-approved = Login approved.
app-denied = Login refused.
app-ready = Ready.
app-activate-prompt = Activate this device.
app-waiting = A login is waiting for you
app-from = From { $ip }
app-confirm-login = Confirm the login: { $service }

# Potvrda's own services, as the phone names them in a request to confirm.
service-portal = eUprava
service-counter = Counter
service-new-device = New device
service-admin-api = Administration

app-report-fraud = Report fraud

## Why a login looks risky (the phone)

risk-new_address = First login from this address
risk-recent_denials = You recently denied a login
risk-recent_fraud_report = You recently reported fraud
risk-velocity = Several logins in a short time
risk-dormant = First login in a long time
risk-new_device = A device was added recently

## potvrda-device (the virtual phone)

dev-enrolled = Enrolled device { $device } for { $user } ({ $mode }); state in { $path }
dev-mode-push = push
dev-mode-pull = pull only
dev-recovery = Recovery codes, each replaces the phone once. Write them down now, they are not shown again:
dev-listening = Listening for pushes on { $endpoint }; { $stop } to stop
dev-rejected = Rejected a push: { $error }
dev-ack-failed = The acknowledgement failed: { $error }
dev-answer = Type the number shown on the login screen to approve, { $enter } to deny, or “{ $fraud }” if this was not you:
dev-none = No pending challenges.
dev-challenge = Challenge { $cid }
dev-login-as = login as: { $user }
dev-service = service: { $service }
dev-message = message: { $message } (the screen asking shows it too)
dev-from = from: { $ip } ({ $agent })
dev-expires = expires in { $seconds } s
dev-unknown = unknown
dev-no-offline = This device was enrolled without an offline secret.
