#!/usr/bin/env bash
# The type check CI runs: mypy, strict on core/ and scoring/ (pyproject.toml's [tool.mypy]).
# mypy does not follow setuptools' editable-install finder, so the folders are
# seen under their installed names (byom.core is core/, ...) through a tree
# of links; scoring/ is checked on its own, as the code folder it is on Azure.
set -euo pipefail
cd "$(dirname "$0")/.."
MYPY=${MYPY:-.venv/bin/mypy}
tree=.cache/typecheck
rm -rf "$tree" && mkdir -p "$tree/byom"
for folder in core cli console; do ln -s "../../../$folder" "$tree/byom/$folder"; done
status=0
(cd "$tree" && "$OLDPWD/$MYPY" --config-file "$OLDPWD/pyproject.toml" -p byom.core -p byom.cli -p byom.console) || status=1
(cd scoring && "$OLDPWD/$MYPY" --config-file "$OLDPWD/pyproject.toml" byom_scoring generate.py token_ranks.py) || status=1
exit $status
