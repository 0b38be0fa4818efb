#!/usr/bin/env bash
# Run scenario files against the alarm core before issue 12 (c8c4e2a), to show they fail there.
#
#   scripts/scenarios_on_old_main.sh scenarios/latched-step-down.yaml scenarios/overtaken-reading.yaml ...
#
# c8c4e2a's own harness cannot read the keys issue 12 added (expect_events, end_state, actions, the
# overtaken fault): it is run first and refuses them. Then this tree's harness (liaowang/scenario.py,
# simulators/scenario.py) is copied into a second worktree of c8c4e2a and drives c8c4e2a's pipeline,
# rules, alerting and configuration, with two names the old code lacks appended (Tier.priority from
# the tier's number; Pipeline.act as the old action followed by Pipeline.announce) and the old
# AlertManager.shelve taking (and ignoring) the new role argument. Worktrees go to $OLD (default /tmp).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
old="${OLD:-/tmp}"
commit=c8c4e2a
python="$here/.venv/bin/python"
files=()
for f in "$@"; do files+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"); done

[ -d "$old/oldmain" ] || git -C "$here" worktree add --detach "$old/oldmain" "$commit" >/dev/null
[ -d "$old/oldmain-harness" ] || git -C "$here" worktree add --detach "$old/oldmain-harness" "$commit" >/dev/null
git -C "$old/oldmain-harness" checkout -q -- .
cp "$here/liaowang/scenario.py" "$old/oldmain-harness/liaowang/scenario.py"
cp "$here/simulators/scenario.py" "$old/oldmain-harness/simulators/scenario.py"
cat >> "$old/oldmain-harness/liaowang/scenario.py" <<'EOF'


# ---- appended by scripts/scenarios_on_old_main.sh: names c8c4e2a lacks, from what it has ----
from alerting.lifecycle import AlertManager as _OldManager  # noqa: E402
from foundation.domain import Tier as _OldTier  # noqa: E402

if not hasattr(_OldTier, "priority"):
    _OldTier.priority = property(lambda t: {1: "low", 2: "medium", 3: "high", 4: "urgent"}[int(t)])
if not hasattr(Pipeline, "act"):
    def _act(self, action):
        result = action()
        changes = result if isinstance(result, list) else [result]
        self.announce(changes)
        return changes
    Pipeline.act = _act
_old_shelve = _OldManager.shelve
_OldManager.shelve = lambda self, alert_id, by, until, reason, role=None: _old_shelve(self, alert_id, by, until, reason)
EOF

echo "== $commit's own harness"
(cd "$old/oldmain" && PYTHONPATH="$old/oldmain" "$python" -m liaowang.cli --log-level error scenario test "${files[@]}") || true
echo "== this tree's harness over $commit's pipeline, rules, alerting and configuration"
cd "$old/oldmain-harness" && PYTHONPATH="$old/oldmain-harness" "$python" -m liaowang.cli --log-level error scenario test "${files[@]}"
