#!/bin/bash
# Checks every shell script of the repository with `bash -n` (syntax) and shellcheck (all
# severities, following sourced files): scripts/, slurm/ (templates, submit, site files),
# bench/, tests/, .ci/. Used by the `unit.shell_scripts` test.
#   scripts/check-shell.sh            exit 0 when every script is clean
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v shellcheck >/dev/null || { echo "check-shell: shellcheck not found (scripts/install-deps.sh installs it)" >&2; exit 1; }

# Tracked files when this is a git checkout (so build trees and scratch files are left out),
# else every file outside build folders.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard)
else
  mapfile -t files < <(find . -type f -not -path './build*' -not -path './.git/*' | sed 's|^\./||')
fi

scripts=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  case "$f" in
    *.sh|*.sbatch|*.env|slurm/submit) scripts+=("$f") ;;
    *.py|*.cpp|*.h|*.json|*.md|*.txt|*.csv|*.gz|*.pt|*.cmake) ;;
    *) if head -c 64 "$f" | head -n 1 | grep -Eq '^#!.*\b(ba)?sh\b'; then scripts+=("$f"); fi ;;
  esac
done
[ "${#scripts[@]}" -gt 0 ] || { echo "check-shell: no shell scripts found" >&2; exit 1; }

status=0
for f in "${scripts[@]}"; do
  bash -n "$f" || { echo "check-shell: bash -n failed: $f" >&2; status=1; }
done
shellcheck --external-sources --shell=bash "${scripts[@]}" || status=1
echo "check-shell: ${#scripts[@]} scripts checked: ${scripts[*]}"
exit "$status"
