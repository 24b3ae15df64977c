#!/usr/bin/env bash
# Mutation testing of resdiag/metrics, resdiag/diagnosis and resdiag/probes (docs/testing.md).
# Not part of CI: it takes minutes to hours. Usage, from anywhere in the repository:
#   tools/mutation/run.sh                  # full run, one worker
#   tools/mutation/run.sh 'resdiag.metrics.rank*'   # only the mutants whose names match
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
"$MUTMUT" run --max-children "$CHILDREN" "$@"
if [ $# -eq 0 ]; then
    # Cached "survived"/"no tests" verdicts predate any test added since: test those mutants again.
    mapfile -t again < <("$MUTMUT" results | sed -n 's/^ *\([^ ]*\): \(survived\|no tests\)$/\1/p')
    if [ ${#again[@]} -gt 0 ]; then
        "$MUTMUT" run --max-children "$CHILDREN" "${again[@]}"
    fi
fi
"$MUTMUT" export-cicd-stats
cat mutants/mutmut-cicd-stats.json
echo
echo "survivors: (cd $WORK && $MUTMUT results)"
