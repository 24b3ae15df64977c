#!/usr/bin/env bash
# Mutation testing of resdiag/metrics, resdiag/diagnosis and resdiag/probes (docs/testing.md).
# Not part of CI: it takes minutes to hours. Usage, from anywhere in the repository:
#   tools/mutation/run.sh                  # full run, one worker
#   tools/mutation/run.sh 'resdiag.metrics.rank*'   # only the mutants whose names match
#   MUTATION_SAMPLE="diagnosis=1 metrics=0.3 probes=0.3" tools/mutation/run.sh   # a seeded sample
# Environment: MUTMUT and PYTHON (the venv's mutmut and python), MUTATION_CHILDREN (default 1).
# It works in a scratch copy ($MUTATION_DIR, default build/mutation) so the tree is never mutated;
# mutmut keeps its results there, so a second run re-tests only what changed.
set -euo pipefail
ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
WORK="${MUTATION_DIR:-$ROOT/build/mutation}"
MUTMUT="${MUTMUT:-mutmut}"
CHILDREN="${MUTATION_CHILDREN:-1}"
mkdir -p "$WORK"
# The working tree as git sees it (tracked and new files, nothing ignored), then mutmut's config.
(cd "$ROOT" && git ls-files -z -co --exclude-standard | tar --null --ignore-failed-read -T - -cf -) \
    | tar -xpf - -C "$WORK"
cp "$ROOT/tools/mutation/setup.cfg" "$WORK/setup.cfg"
cd "$WORK"
# The scratch copy must be what the tests import, never an installed resdiag.
unset PYTHONPATH
# mutmut maps tests to functions once and afterwards only for new tests, so a function that is new
# since the last run would read "no tests": drop the map and let it be rebuilt (one traced pass).
rm -f mutants/mutmut-stats.json
PY="${PYTHON:-python3}"
redo() {  # names of the mutants in "$1" (or all) that are not decided, or whose "survived"/"no
          # tests" predates the tests added since
    "$MUTMUT" results --all true | sed -n 's/^ *\([^ ]*\): \(survived\|no tests\|not checked\)$/\1/p' \
        | { if [ -n "${1:-}" ]; then grep -Fxf "$1"; else cat; fi; }
}
if [ $# -gt 0 ]; then
    "$MUTMUT" run --max-children "$CHILDREN" "$@"
elif [ -n "${MUTATION_SAMPLE:-}" ]; then
    # e.g. MUTATION_SAMPLE="diagnosis=1 metrics=0.3 probes=0.3": first make the mutants (testing one
    # small function's), then test a seeded random sample of them (tools/mutation/sample.py).
    "$MUTMUT" run --max-children "$CHILDREN" 'resdiag.metrics.gradient.x_first_non_finite__mutmut_*'
    # shellcheck disable=SC2086
    "$MUTMUT" results --all true | "$PY" "$ROOT/tools/mutation/sample.py" $MUTATION_SAMPLE > mutants/sample.txt
    mapfile -t again < <(redo mutants/sample.txt)
    if [ ${#again[@]} -gt 0 ]; then "$MUTMUT" run --max-children "$CHILDREN" "${again[@]}"; fi
else
    "$MUTMUT" run --max-children "$CHILDREN"
    mapfile -t again < <(redo)
    if [ ${#again[@]} -gt 0 ]; then "$MUTMUT" run --max-children "$CHILDREN" "${again[@]}"; fi
fi
SAMPLE_ARG=()
if [ -n "${MUTATION_SAMPLE:-}" ] && [ $# -eq 0 ]; then SAMPLE_ARG=(--only mutants/sample.txt); fi
"$MUTMUT" results --all true | "$PY" "$ROOT/tools/mutation/score.py" "${SAMPLE_ARG[@]}"
echo "survivors: (cd $WORK && $MUTMUT results)"
