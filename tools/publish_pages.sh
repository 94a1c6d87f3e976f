#!/usr/bin/env bash
# Publish a built site to a branch of a git remote, as one orphan commit
# (the branch holds the site and nothing else; Colab opens each chapter's
# _sources/<page>.ipynb from it).
#   tools/publish_pages.sh SITE_DIR REMOTE [BRANCH]
# .github/workflows/pages.yml runs it with the GitHub remote; the test
# suite runs the workflow's step with a local bare repository.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 SITE_DIR REMOTE [BRANCH]" >&2; exit 2
fi
site=$1 remote=$2 branch=${3:-gh-pages}
if [ ! -f "$site/index.html" ]; then
  echo "publish_pages: no index.html in $site (build the book first)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$site/." "$work/"
touch "$work/.nojekyll"          # serve _static/, _sources/ as they are
git -C "$work" init -q
git -C "$work" checkout -q --orphan "$branch"
git -C "$work" add -A
git -C "$work" -c user.name="${PAGES_AUTHOR:-course site}" \
  -c user.email="${PAGES_EMAIL:-pages@localhost}" \
  commit -q -m "Publish the course site"
git -C "$work" push -q --force "$remote" "$branch:refs/heads/$branch"
echo "published $site to $branch"
