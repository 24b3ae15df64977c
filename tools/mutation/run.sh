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
"$MUTMUT" run --max-children "$CHILDREN" "$@"
"$MUTMUT" export-cicd-stats
cat mutants/mutmut-cicd-stats.json
echo
echo "survivors: (cd $WORK && $MUTMUT results)"
