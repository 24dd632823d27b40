#!/usr/bin/env bash
# Legato's test command (the README's second command, and what CI runs).
# On a fresh machine it installs what the tests need (Python packages, SIPp, baresip,
# espeak-ng), makes sure PostgreSQL and Redis answer on loopback, then runs every check
# and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

say "Debian packages the tests use (SIPp and baresip as real SIP peers, espeak-ng prompts)"
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v baresip >/dev/null 2>&1 || missing+=(baresip)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "cannot install ${missing[*]} (needs root and apt-get); the tests that need it will fail" >&2
  fi
fi

say "Python packages"
python3 -m pip install -q --disable-pip-version-check -e '.[dev]'

say "Services: PostgreSQL and Redis on 127.0.0.1"
bash scripts/services.sh

failed=()
step() {  # run a check, remember a failure, go on so one run shows every problem
  local name=$1; shift
  say "$name"
  "$@" || failed+=("$name")
}

step "ruff (lint)" ruff check src tests bench
step "mypy --strict (the whole package)" mypy
step "import-linter (architecture)" lint-imports
step "generated docs are current" python3 -m legato.docsgen --check
step "example scenarios" legato simulate examples/scenarios --check

say "Test suite"
set +e
python3 -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no test: the suite must not be empty" >&2
  rc=1
fi
[ "$rc" -eq 0 ] || failed+=("pytest")

if ((${#failed[@]})); then
  printf '\nFAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
echo "all checks passed"
