# Potvrda — magyar. Anyanyelvi lektorálásra vár (lásd a jegyzetet).

## Közös

brand = eUprava · Potvrda
language = Nyelv
language-apply = Nyelv módosítása
button-continue = Tovább
button-next = Tovább
field-username = Felhasználónév
field-password = Jelszó
password-paste = A jelszót beillesztheti, vagy kitöltheti jelszókezelőből is.

## Bejelentkezés OpenID Connecttel

login-title = Bejelentkezés
login-for = szolgáltatás:
login-hint = A jelszó után erősítse meg a bejelentkezést a telefonján.
waiting-title = Erősítse meg a telefonján
waiting-instruction = Nyissa meg a telefonján a(z) { $service } bejelentkezési kérelmét, és írja be ezt a számot:
waiting-number-label = Megerősítő szám
waiting-number-meaning = Ugyanezt a számot írja be a telefonján: így tudja a telefon, hogy éppen ezt a bejelentkezést erősíti meg.
waiting-time =
    { $seconds ->
        [one] A kérelem még { $seconds } másodpercig érvényes.
       *[other] A kérelem még { $seconds } másodpercig érvényes.
    }
waiting-time-warning = Hamarosan lejár a megerősítés ideje. Ha több időre van szüksége, küldjön új kérelmet.
waiting-expired = A megerősítés ideje lejárt. Küldjön új kérelmet a telefonra.
waiting-restart = Új kérelem küldése a telefonra
waiting-continue = Megerősítettem — tovább
waiting-offline = Nincs internet a telefonon?
waiting-code-label = Az alkalmazás kódja vagy helyreállító kód
waiting-code-submit = Megerősítés kóddal
waiting-not-you = Ha nem Ön kezdte ezt a bejelentkezést, válassza a telefonon az „Elutasítás” lehetőséget.
error-wrong-code = Hibás kód.
error-wrong-credentials = Hibás felhasználónév vagy jelszó.
error-enter-credentials = Adja meg a felhasználónevet és a jelszót.
login-no-phone = Ehhez a fiókhoz nem tartozik telefon a megerősítéshez. Forduljon a községe ügyfélszolgálatához.
login-too-many = Túl sok próbálkozás. Várjon néhány percet, majd próbálja újra.
consent-title = Hozzájárulás
consent-asking = A(z) { $service } szeretné tudni:
consent-allow = Engedélyezés
consent-deny = Elutasítás
scope-openid = ki Ön (az azonosítója)
scope-profile = a felhasználónevét és a nevét
scope-email = az e-mail-címét
scope-phone = a telefonszámát
scope-offline_access = hozzáférés akkor is, amikor nincs bejelentkezve
logout-title = Kijelentkezés
logout-question = Ki szeretne jelentkezni az eUpraváról?
logout-button = Kijelentkezés
logged-out-title = Kijelentkezett
logged-out-message = Azokból a szolgáltatásokból is kijelentkeztetjük, amelyekbe be volt jelentkezve.
logged-out-done = A munkamenete véget ért.
logged-out-frame = Kijelentkezés egy szolgáltatásból
error-cannot-log-in = A bejelentkezés nem lehetséges
error-invalid-request = Érvénytelen kérés
error-no-session = Nem található munkamenet. Térjen vissza a szolgáltatáshoz, és kezdje újra.
error-link-expired = Ez a bejelentkezési hivatkozás lejárt, vagy már felhasználták. Térjen vissza a szolgáltatáshoz, és kezdje újra.
error-unknown-client = Ismeretlen szolgáltatás: az ideirányító szolgáltatás nincs regisztrálva.
error-bad-request-object = A szolgáltatás aláírt kérése nem ellenőrizhető. Térjen vissza a szolgáltatáshoz, és kezdje újra.
error-redirect-not-registered = A visszatérési cím nincs regisztrálva ehhez a szolgáltatáshoz.
error-login-expired = Ez a bejelentkezés lejárt, vagy másik böngészőben nyitották meg. Térjen vissza a szolgáltatáshoz, és kezdje újra.

## Ügyfélszolgálat

counter-brand = eUprava · Potvrda · Ügyfélszolgálat
counter-title = Ügyfélszolgálat
counter-login-title = Ügyintézői bejelentkezés
counter-login-hint = A jelszó után erősítse meg a bejelentkezést a saját telefonján.
counter-waiting-instruction = Nyissa meg a telefonján az „Ügyfélszolgálat” kérelmet, és írja be ezt a számot:
counter-logout = Kijelentkezés
counter-back = Ügyfélszolgálat
role-official = ügyintéző
role-admin = adminisztrátor
role-superadmin = főadminisztrátor
search-title = Ügyfél keresése
search-label = A felhasználónév kezdete
search-button = Keresés
search-none = Nincs találat.
col-username = Felhasználónév
col-name = Név
col-status = Állapot
status-fraud = Visszaélést jelentett
status-locked = Zárolva
status-active = Aktív
new-title = Új fiók
new-hint = Ellenőrizze az ügyfél személyi igazolványát. A fiók megnyitásakor kinyomtatjuk a jelszót és az aktiváló kódot tartalmazó lapot.
new-username = Felhasználónév (üresen hagyva a névből javasolunk egyet)
new-name = Teljes név
new-email = E-mail (nem kötelező)
new-phone = Telefon (nem kötelező)
new-locale = Az ügyfél lapjának nyelve és írása
new-submit = Fiók megnyitása és nyomtatás
citizen-back = Vissza a kereséshez
fact-email = E-mail
fact-phone = Telefon
fact-opened = Megnyitva
fraud-alert = Az ügyfél { $when } időpontban a telefonján visszaélésként jelentett egy bejelentkezést, ezért a fiókot zároltuk. A feloldás előtt ellenőrizze a személyazonosságát.
reset-pending = { $who } visszaállítást kért ({ $when }); egy második ügyintézőnek is meg kell erősítenie.
reset-confirm = Megerősítem a visszaállítást, és nyomtatok
reset-awaiting = Egy második ügyintéző megerősítésére vár.
action-unlock = Feloldás
action-lock = Zárolás
action-reset = Elveszett telefon: új jelszó és kód, nyomtatás
devices-title = Eszközök
devices-none = Nincs aktív eszköz.
col-device = Megnevezés
col-platform = Platform
col-push = Értesítések
col-since = Mióta
action-revoke = Visszavonás
push-on = igen
push-off = nem (lekérdez)
push-gone = elérhetetlen
events-title = Biztonsági események
events-hint = Az utolsó 30 nap, a legújabb elöl. A feloldás előtt ellenőrizze, mikor, honnan és melyik szolgáltatásba érkezett a jelentett bejelentkezés.
events-none = Nincs esemény.
col-time = Idő
col-what = Mi
col-address = Cím
col-service = Szolgáltatás
col-reason = Ok
event-login-started = bejelentkezés
event-login-approved = megerősítve
event-login-denied = elutasítva
event-login-expired = lejárt
event-login-failed = sikertelen bejelentkezés
event-fraud-reported = VISSZAÉLÉST JELENTETT
event-password-locked = jelszó zárolva
event-device-enrolled = eszköz aktiválva
event-device-revoked = eszköz visszavonva
event-account-locked = fiók zárolva
event-account-unlocked = fiók feloldva
event-password-changed = új jelszó
event-recovery-code-used = helyreállító kód
event-offline-code-used = internet nélküli kód
event-fatigue-paused = értesítések szüneteltetve
event-other = esemény
event-account-reset = fiók visszaállítása
notice-locked = A fiók zárolva.
notice-unlocked = A fiók feloldva.
notice-revoked = Az eszköz visszavonva.
notice-reset-requested = Visszaállítás kérve; egy második ügyintéző erősíti meg.
error-forbidden = Nem engedélyezett
error-not-found = Nem található
error-not-possible = Nem lehetséges
refused-username-taken = Ez a felhasználónév foglalt.
refused-invalid-request = Az űrlap adatai nem érvényesek.
refused-forbidden = Az Ön szerepköre ezt nem engedi.
refused-not-found = Nincs ilyen ügyfél vagy eszköz.
refused-second-official = Ezt egy második ügyintézőnek kell megerősítenie.
refused-account-locked = A fiók zárolva.
refused-rate-limited = Túl sok próbálkozás. Próbálja újra később.
refused-other = A művelet nem történt meg.
desk-not-staff = Ez nem ügyintézői fiók.
desk-account-locked = A fiók zárolva.
desk-no-phone = A fiókhoz nem tartozik telefon a megerősítéshez.
desk-too-many = Túl sok próbálkozás. Várjon néhány percet.
desk-session-ended = A munkamenet véget ért.
desk-login-used = Ezt a bejelentkezést már felhasználták.
desk-confirmation-expired = A megerősítés lejárt.
desk-not-confirmed = A bejelentkezést nem erősítették meg a telefonon.

## Az ügyfél lapja

sheet-title = Az Ön eUprava-fiókja
sheet-username = Felhasználónév
sheet-password = Kezdeti jelszó
sheet-code = Aktiváló kód
sheet-expires = A kód érvényes eddig:
sheet-scan = Olvassa be a Potvrda alkalmazással
sheet-steps = Útmutató
sheet-step-install = Telepítse a Potvrda alkalmazást a telefonjára.
sheet-step-activate = Az alkalmazásban válassza az „Aktiválás” lehetőséget, és olvassa be a fenti kódot (vagy írja be az aktiváló kódot).
sheet-step-login = Jelentkezzen be az eUprava portálra a felhasználónevével és a kezdeti jelszóval, majd változtassa meg a jelszót.
sheet-step-confirm = Minden bejelentkezést erősítsen meg a telefonján a képernyőn látható szám beírásával. Ha nem Ön volt, válassza a „Visszaélés jelentése” lehetőséget.
sheet-footer = Ez a lap titkos adatokat tartalmaz: őrizze meg biztonságos helyen, vagy aktiválás után semmisítse meg.
sheet-print = Nyomtatás
sheet-back = Vissza az ügyfélszolgálathoz
role-citizen = állampolgár

## A böngésző mint második eszköz (/app/)

app-title = Potvrda
app-loading = Betöltés…
app-enroll-title = Aktiválás
app-enroll-intro = Írja be a kinyomtatott lapon lévő aktiváló kódot, és válasszon hatjegyű PIN-kódot.
app-code = Aktiváló kód
app-pin = PIN-kód
app-pin-again = PIN-kód még egyszer
app-device-name = Az eszköz neve
app-device-default = Számítógép
app-activate = Aktiválás
app-recovery-title = Helyreállító kódok
app-recovery-intro = Írja fel őket papírra: mindegyik egyszer helyettesít egy megerősítést. Többé nem jelennek meg.
app-codes-done = Felírtam őket
app-home-title = Várakozó bejelentkezések
app-none = Nincs várakozó bejelentkezés.
app-offline-summary = Nincs hálózat? Kód a bejelentkezéshez
app-offline-show = Megjelenítés
app-account = Fiók
app-message = Üzenet
app-address = Cím
app-browser = Böngésző
app-expires = Lejár
app-number = A bejelentkezési képernyőn látható szám
app-approve = Megerősítés
app-deny = Elutasítás
app-fraud = Nem én voltam
app-wrong-pin = Hibás PIN-kód.
app-pin-locked = A PIN-kód zárolva; aktiválja újra ezt az eszközt.
app-number-required = Írja be a bejelentkezési képernyőn látható számot.
app-invalid-activation = Érvénytelen aktiváló kód.
app-server-refused = A szerver elutasította a kérést:
app-error = Hiba:
app-pins-differ = A PIN-kódok eltérnek.
app-activated = Az eszköz aktiválva.
app-approved = A bejelentkezés megerősítve.
app-denied = A bejelentkezés elutasítva.
app-ready = Kész.
app-activate-prompt = Aktiválja ezt az eszközt.
app-waiting = Egy bejelentkezés megerősítésre vár
app-from = Innen: { $ip }
app-confirm-login = A bejelentkezés megerősítése: { $service }

# A Potvrda saját szolgáltatásai, ahogy a telefon megnevezi őket egy megerősítési kérésben.
service-portal = eUprava
service-counter = Ügyfélszolgálati pult
service-new-device = Új eszköz
service-admin-api = Adminisztráció

app-report-fraud = Visszaélés jelentése

## Miért kockázatos a bejelentkezés (telefon)

risk-new_address = Első bejelentkezés erről a címről
risk-recent_denials = Nemrég elutasított egy bejelentkezést
risk-recent_fraud_report = Nemrég visszaélést jelentett
risk-velocity = Több bejelentkezés rövid idő alatt
risk-dormant = Első bejelentkezés hosszú idő után
risk-new_device = Nemrég új eszközt adtak hozzá

## potvrda-device (a virtuális telefon)

dev-enrolled = A(z) { $device } eszköz aktiválva { $user } számára ({ $mode }); az állapot helye: { $path }
dev-mode-push = értesítések
dev-mode-pull = csak lekérdezés
dev-recovery = Helyreállító kódok: mindegyik egyszer helyettesíti a telefont. Írja fel őket most, többé nem jelennek meg:
dev-listening = Értesítésekre várok itt: { $endpoint }; { $stop } a befejezéshez
dev-rejected = Elutasított értesítés: { $error }
dev-ack-failed = A fogadás visszaigazolása nem sikerült: { $error }
dev-answer = Írja be a bejelentkezési képernyőn látható számot a megerősítéshez, { $enter } az elutasításhoz, vagy „{ $fraud }”, ha nem Ön volt:
dev-none = Nincs várakozó bejelentkezés.
dev-challenge = Kérelem: { $cid }
dev-login-as = bejelentkezés mint: { $user }
dev-service = szolgáltatás: { $service }
dev-message = üzenet: { $message } (a kérő képernyő is mutatja)
dev-from = honnan: { $ip } ({ $agent })
dev-expires = lejár { $seconds } mp múlva
dev-unknown = ismeretlen
dev-no-offline = Ez az eszköz internet nélküli kód titka nélkül lett aktiválva.
