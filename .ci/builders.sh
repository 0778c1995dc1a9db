#!/usr/bin/env bash
# The builders' check (non-blocking: not part of .ci/run). Builds the site with MkDocs, the
# reference, and with each successor named below, in an environment of its own, and lists what
# differs from the reference (python -m sitegen.compare): pages, drawings, CSP, notebook pages,
# "tested with" line, other HTML. A builder that does not install or fails to build is reported
# as such. Exit status: 0, unless the reference build itself fails.
#
# Each successor's environment (.venv-NAME, git-ignored) sees the packages of .venv through a
# .pth file (torch and the docs tools, the same versions as the reference) and adds only the
# builder; JUPYTER_PATH points at .venv's nbconvert templates, which a .pth file does not carry.
# ProperDocs runs the site's MkDocs hook (hooks/mkdocs_adapter.py); Zensical runs no hooks, so
# the check runs `python -m sitegen pre` before its build and `python -m sitegen post` after it.
#
#   bash .ci/builders.sh            # results under build/builders/
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=build/builders
BUILDERS=("properdocs==1.6.7" "zensical==0.1.1")
PY=.venv/bin/python
[ -x "$PY" ] || { echo "builders: no .venv; run python3 dev.py build first" >&2; exit 1; }
SITE_PACKAGES=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
BASE=$("$PY" -c 'import sys; print(sys.base_prefix)')/bin/python3
export NO_MKDOCS_2_WARNING=1 JUPYTER_PATH="$PWD/.venv/share/jupyter"
mkdir -p "$OUT"

echo "== mkdocs (reference)"
if ! "$PY" -m mkdocs build --strict -d "$OUT/mkdocs" >"$OUT/mkdocs.log" 2>&1; then
  tail -20 "$OUT/mkdocs.log"; echo "builders: the reference build failed ($OUT/mkdocs.log)" >&2; exit 1
fi
echo "built: $OUT/mkdocs"

for spec in "${BUILDERS[@]}"; do
  name=${spec%%==*}
  env=".venv-$name"
  echo; echo "== $spec"
  if [ ! -x "$env/bin/python" ]; then
    "$BASE" -m venv "$env" || { echo "$spec: no environment could be made"; continue; }
  fi
  pth=$("$env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/shared-venv.pth
  echo "$SITE_PACKAGES" >"$pth"
  if ! "$env/bin/python" -m pip install -q "$spec" >"$OUT/$name-install.log" 2>&1; then
    echo "$spec: does not install here: $(grep -m1 '^ERROR' "$OUT/$name-install.log")"
    continue
  fi
  rm -rf "$OUT/$name"
  case $name in
    properdocs)
      "$env/bin/properdocs" build --strict -f mkdocs.yml -d "$OUT/$name" >"$OUT/$name.log" 2>&1 ;;
    zensical)
      # Zensical reads mkdocs.yml but takes no output folder on its command line: a copy of
      # the configuration names one (mkdocs.yml has no site_dir of its own).
      config=.builders-zensical.yml
      { cat mkdocs.yml; echo "site_dir: $OUT/$name"; } >"$config"
      "$env/bin/python" -m sitegen -f "$config" pre >"$OUT/$name.log" 2>&1 &&
        "$env/bin/zensical" build -f "$config" >>"$OUT/$name.log" 2>&1 &&
        "$env/bin/python" -m sitegen -f "$config" post "$OUT/$name" >>"$OUT/$name.log" 2>&1
      status=$?; rm -f "$config"; (exit $status) ;;
  esac
  if [ $? -ne 0 ]; then
    echo "$spec: the build failed ($OUT/$name.log):"; tail -5 "$OUT/$name.log"; continue
  fi
  "$PY" -m sitegen.compare "$OUT/mkdocs" "$OUT/$name"
done
exit 0
