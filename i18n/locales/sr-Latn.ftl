# Potvrda — srpski, latinica. Poruke latinicom prave se iz ćiriličnog
# kataloga (sr-Cyrl.ftl) tačnom transliteracijom; ovde stoje samo one
# gde transliteracija ne daje ono što čitalac latinice očekuje. Zasad
# nijedna: transliteracija svih poruka je tačna.
