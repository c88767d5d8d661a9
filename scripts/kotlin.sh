#!/usr/bin/env bash
# The Kotlin bindings compiled and every Kotlin listing of docs/MOBILE.md
# with them (issue 15):
#   scripts/kotlin.sh BINDINGS_DIR
# BINDINGS_DIR is what scripts/bindings.sh generated (kotlin/ and the
# library). Installs the Kotlin compiler from the npm registry (package
# kotlin-compiler, pinned) into target/kotlin-<version>; needs a JDK and
# Debian's libjna-java. Writes BINDINGS_DIR/potvrda-kotlin.jar: the bindings
# and tests/kotlin/BindingsLogin.kt, which the end-to-end test runs with
# `java` against a live server. The listings are compiled against the
# bindings with the stand-ins of tests/kotlin/android-stubs, so the guide
# cannot drift from the library.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: scripts/kotlin.sh BINDINGS_DIR}"
version=2.4.20
tools="target/kotlin-$version"
kotlinc="$tools/node_modules/kotlin-compiler/bin/kotlinc-jvm"
if [ ! -x "$kotlinc" ]; then
  echo "==> installing kotlin-compiler $version from the npm registry"
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-save --no-audit --no-fund --silent "kotlin-compiler@$version"
  chmod +x "$tools"/node_modules/kotlin-compiler/bin/*
fi
jna=/usr/share/java/jna.jar
[ -f "$jna" ] || { echo "kotlin.sh: $jna is missing: apt-get install -y libjna-java" >&2; exit 1; }
command -v java >/dev/null || { echo "kotlin.sh: a JDK is needed (apt-get install -y openjdk-17-jdk-headless)" >&2; exit 1; }

listings="$out/kotlin-listings"
rm -rf "$listings" && mkdir -p "$listings"
python3 - docs/MOBILE.md "$listings" <<'PY'
import pathlib, re, sys
text = pathlib.Path(sys.argv[1]).read_text()
blocks = re.findall(r"```kotlin\n(.*?)```", text, re.S)
assert blocks, "no Kotlin listing in docs/MOBILE.md"
for i, block in enumerate(blocks, 1):
    imports = [l for l in block.splitlines() if l.startswith("import ")]
    body = [l for l in block.splitlines() if not l.startswith("import ")]
    src = ["package docs.listings", "", *imports, "import rs.potvrda.core.*", "", *body]
    pathlib.Path(sys.argv[2], f"Listing{i}.kt").write_text("\n".join(src) + "\n")
print(f"kotlin.sh: {len(blocks)} listings from docs/MOBILE.md")
PY
export JAVA_OPTS="${JAVA_OPTS:--Xmx1g}"
echo "==> kotlinc: the bindings and tests/kotlin/BindingsLogin.kt"
"$kotlinc" -nowarn -include-runtime -cp "$jna" -d "$out/potvrda-kotlin.jar" \
  "$out"/kotlin/rs/potvrda/core/*.kt tests/kotlin/BindingsLogin.kt
echo "==> kotlinc: the listings of docs/MOBILE.md against them"
"$kotlinc" -nowarn -cp "$jna:$out/potvrda-kotlin.jar" -d "$out/kotlin-listings.jar" \
  tests/kotlin/android-stubs/*.kt "$listings"/*.kt
echo "kotlin.sh: compiled $out/potvrda-kotlin.jar and the guide's listings"
