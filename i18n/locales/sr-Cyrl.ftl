# Потврда — српски, ћирилица: извор каталога. Латиница (sr-Latn) се из
# њега прави транслитерацијом; где она не даје оно што читалац очекује,
# поруку замењује sr-Latn.ftl.

## Заједничко

brand = еУправа · Потврда
language = Језик
language-apply = Промени језик
button-continue = Даље
button-next = Настави
field-username = Корисничко име
field-password = Лозинка
password-paste = Лозинку можете и да налепите или попуните из менаџера лозинки.

## Пријава преко OpenID Connect

login-title = Пријава
login-for = за услугу
login-hint = После лозинке потврдите пријаву на телефону.
waiting-title = Потврдите на телефону
waiting-instruction = На телефону отворите захтев за пријаву на { $service } и унесите овај број:
waiting-number-label = Број за потврду
waiting-number-meaning = Исти број унесите на телефону: тако телефон зна да потврђујете баш ову пријаву.
waiting-time =
    { $seconds ->
        [one] Захтев важи још { $seconds } секунду.
        [few] Захтев важи још { $seconds } секунде.
       *[other] Захтев важи још { $seconds } секунди.
    }
waiting-time-warning = Време за потврду ускоро истиче. Ако вам треба више времена, пошаљите нови захтев.
waiting-expired = Време за потврду је истекло. Пошаљите нови захтев на телефон.
waiting-restart = Пошаљи нови захтев на телефон
waiting-continue = Потврђено — настави
waiting-offline = Телефон нема интернет?
waiting-code-label = Код из апликације или код за опоравак
waiting-code-submit = Потврди кодом
waiting-not-you = Ако нисте ви започели ову пријаву, на телефону изаберите „Одбиј”.
error-wrong-code = Погрешан код.
error-wrong-credentials = Погрешно корисничко име или лозинка.
error-enter-credentials = Унесите корисничко име и лозинку.
login-no-phone = Овај налог нема телефон за потврду. Обратите се шалтеру своје општине.
login-too-many = Превише покушаја. Сачекајте неколико минута, па покушајте поново.
consent-title = Сагласност
consent-asking = { $service } тражи да зна:
consent-allow = Дозволи
consent-deny = Одбиј
scope-openid = ко сте (ваш идентификатор)
scope-profile = ваше корисничко име и име
scope-email = вашу адресу е-поште
scope-phone = ваш број телефона
scope-offline_access = приступ и када нисте пријављени
logout-title = Одјава
logout-question = Да ли желите да се одјавите са еУправе?
logout-button = Одјави ме
logged-out-title = Одјављени сте
logged-out-message = Одјављујемо вас и са услуга на које сте били пријављени.
logged-out-done = Ваша сесија је завршена.
logged-out-frame = Одјава са услуге
error-cannot-log-in = Пријава није могућа
error-invalid-request = Неисправан захтев
error-no-session = Сесија није пронађена. Вратите се на услугу и почните поново.
error-link-expired = Ова веза за пријаву је истекла или је већ искоришћена. Вратите се на услугу и почните поново.
error-unknown-client = Непознат сервис: услуга која вас је послала овде није регистрована.
error-bad-request-object = Потписани захтев услуге није исправан. Вратите се на услугу и почните поново.
error-redirect-not-registered = Адреса за повратак није регистрована за ову услугу.
error-login-expired = Ова пријава је истекла или је отворена у другом прегледачу. Вратите се на услугу и почните поново.

## Шалтер

counter-brand = еУправа · Потврда · Шалтер
counter-title = Шалтер
counter-login-title = Пријава службеника
counter-login-hint = После лозинке потврдите пријаву на свом телефону.
counter-waiting-instruction = Отворите захтев „Шалтер” на свом телефону и унесите овај број:
counter-logout = Одјава
counter-back = Шалтер
role-official = службеник
role-admin = администратор
role-superadmin = главни администратор
search-title = Претрага грађана
search-label = Корисничко име почиње са
search-button = Тражи
search-none = Нема резултата.
col-username = Корисничко име
col-name = Име
col-status = Стање
status-fraud = Пријављена злоупотреба
status-locked = Закључан
status-active = Активан
new-title = Нови налог
new-hint = Проверите личну карту грађанина. Када отворите налог, штампа се лист са лозинком и активационим кодом.
new-username = Корисничко име (ако оставите празно, предлаже се из имена)
new-name = Име и презиме
new-email = Е-пошта (није обавезно)
new-phone = Телефон (није обавезно)
new-locale = Језик и писмо листа за грађанина
new-submit = Отвори налог и штампај
citizen-back = Назад на претрагу
fact-email = Е-пошта
fact-phone = Телефон
fact-opened = Отворен
fraud-alert = Грађанин је { $when } на телефону пријавио пријаву као злоупотребу и налог је закључан. Проверите идентитет пре откључавања.
reset-pending = Ресет је затражио службеник { $who } ({ $when }); потребна је потврда другог службеника.
reset-confirm = Потврђујем ресет и штампам
reset-awaiting = Чека се потврда другог службеника.
action-unlock = Откључај
action-lock = Закључај
action-reset = Изгубљен телефон: нова лозинка и код, штампа
devices-title = Уређаји
devices-none = Нема активних уређаја.
col-device = Назив
col-platform = Платформа
col-push = Обавештења
col-since = Од
action-revoke = Опозови
push-on = да
push-off = не (преузима сам)
push-gone = недоступна
events-title = Безбедносни догађаји
events-hint = Последњих 30 дана, најновији први. Пре откључавања проверите када, одакле и у коју услугу је дошла пријава.
events-none = Нема догађаја.
col-time = Време
col-what = Шта
col-address = Адреса
col-service = Услуга
col-reason = Разлог
event-login-started = пријава
event-login-approved = потврђено
event-login-denied = одбијено
event-login-expired = истекло
event-login-failed = неуспела пријава
event-fraud-reported = ПРИЈАВЉЕНА ЗЛОУПОТРЕБА
event-password-locked = лозинка блокирана
event-device-enrolled = уређај активиран
event-device-revoked = уређај опозван
event-account-locked = налог закључан
event-account-unlocked = налог откључан
event-password-changed = нова лозинка
event-recovery-code-used = код за опоравак
event-offline-code-used = код без интернета
event-fatigue-paused = обавештења паузирана
event-other = догађај
event-account-reset = ресет налога
notice-locked = Налог је закључан.
notice-unlocked = Налог је откључан.
notice-revoked = Уређај је опозван.
notice-reset-requested = Ресет је затражен; потврђује га други службеник.
error-forbidden = Није дозвољено
error-not-found = Није пронађено
error-not-possible = Није могуће
refused-username-taken = Ово корисничко име је заузето.
refused-invalid-request = Подаци у обрасцу нису исправни.
refused-forbidden = Ваша улога не дозвољава ову радњу.
refused-not-found = Грађанин или уређај није пронађен.
refused-second-official = Ову радњу потврђује други службеник.
refused-account-locked = Налог је закључан.
refused-rate-limited = Превише покушаја. Покушајте поново касније.
refused-other = Радња није извршена.
desk-not-staff = Ово није налог службеника.
desk-account-locked = Налог је закључан.
desk-no-phone = Налог нема телефон за потврду.
desk-too-many = Превише покушаја. Сачекајте неколико минута.
desk-session-ended = Сесија је завршена.
desk-login-used = Ова пријава је већ искоришћена.
desk-confirmation-expired = Потврда је истекла.
desk-not-confirmed = Пријава није потврђена на телефону.

## Лист за грађанина

sheet-title = Ваш налог за еУправу
sheet-username = Корисничко име
sheet-password = Почетна лозинка
sheet-code = Активациони код
sheet-expires = Код важи до
sheet-scan = Скенирајте апликацијом Потврда
sheet-steps = Упутство
sheet-step-install = Инсталирајте апликацију Потврда на телефон.
sheet-step-activate = У апликацији изаберите „Активирај” и скенирајте код изнад (или укуцајте активациони код).
sheet-step-login = Пријавите се на портал еУправа корисничким именом и почетном лозинком, па је промените.
sheet-step-confirm = Сваку пријаву потврдите на телефону уносом броја са екрана. Ако то нисте ви, изаберите „Пријави злоупотребу”.
sheet-footer = Овај лист садржи тајне податке: чувајте га или га уништите после активације.
sheet-print = Штампај
sheet-back = Назад на шалтер
role-citizen = грађанин

## Прегледач као други уређај (/app/)

app-title = Потврда
app-loading = Учитавање…
app-enroll-title = Активација
app-enroll-intro = Упишите активациони код са одштампаног листа и изаберите ПИН од шест цифара.
app-code = Активациони код
app-pin = ПИН
app-pin-again = ПИН поново
app-device-name = Назив уређаја
app-device-default = Рачунар
app-activate = Активирај
app-recovery-title = Резервни кодови
app-recovery-intro = Запишите их на папир: сваки замењује потврду једном. Неће бити приказани поново.
app-codes-done = Записано је
app-home-title = Пријаве на чекању
app-none = Нема пријава на чекању.
app-offline-summary = Нема мреже? Код за пријаву
app-offline-show = Прикажи
app-account = Налог
app-message = Порука
app-address = Адреса
app-browser = Прегледач
app-expires = Истиче
app-number = Број са екрана за пријаву
app-approve = Потврди
app-deny = Одбиј
app-fraud = Нисам ја
app-wrong-pin = Погрешан ПИН.
app-pin-locked = ПИН је закључан; активирајте уређај поново.
app-number-required = Упишите број са екрана за пријаву.
app-invalid-activation = Неисправан активациони код.
app-server-refused = Сервер је одбио захтев:
app-error = Грешка:
app-pins-differ = ПИН-ови се разликују.
app-activated = Уређај је активиран.
app-approved = Пријава је потврђена.
app-denied = Пријава је одбијена.
app-ready = Спремно.
app-activate-prompt = Активирајте овај уређај.
app-waiting = Пријава чека потврду
app-from = Са адресе { $ip }
app-confirm-login = Потврди пријаву: { $service }

# Потврдине сопствене услуге, како их телефон именује у захтеву за потврду.
service-portal = еУправа
service-counter = Шалтер
service-new-device = Нови уређај
service-admin-api = Администрација

app-report-fraud = Пријави злоупотребу

## Зашто је пријава ризична (телефон)

risk-new_address = Прва пријава са ове адресе
risk-recent_denials = Недавно сте одбили пријаву
risk-recent_fraud_report = Недавно сте пријавили злоупотребу
risk-velocity = Више пријава за кратко време
risk-dormant = Прва пријава после дужег времена
risk-new_device = Недавно је додат уређај

## potvrda-device (виртуелни телефон)

dev-enrolled = Уређај { $device } је активиран за { $user } ({ $mode }); стање је у { $path }
dev-mode-push = обавештења
dev-mode-pull = само преузимање
dev-recovery = Резервни кодови: сваки једном замењује телефон. Запишите их сада, неће бити приказани поново:
dev-listening = Чекам обавештења на { $endpoint }; { $stop } за крај
dev-rejected = Одбијено обавештење: { $error }
dev-ack-failed = Потврда пријема није успела: { $error }
dev-answer = Упишите број са екрана за пријаву да потврдите, { $enter } да одбијете, или „{ $fraud }” ако то нисте ви:
dev-none = Нема пријава на чекању.
dev-challenge = Захтев { $cid }
dev-login-as = пријава као: { $user }
dev-service = услуга: { $service }
dev-message = порука: { $message } (исту приказује и екран који тражи)
dev-from = одакле: { $ip } ({ $agent })
dev-expires = истиче за { $seconds } с
dev-unknown = непознато
dev-no-offline = Овај уређај је активиран без тајне за код без интернета.
