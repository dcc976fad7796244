#!/bin/sh
# tests/refs.sh - every reference in the sources points inside the
# repository: no path outside the checkout, the contract pages cited as
# doc/library.md, doc/daemon.md, doc/quality.md (which exist), no team
# or issue labels in comments (comments say what the code does), and the
# daemon's Lua requires its own modules without guards.
# Runs on a git checkout and on a dist tarball alike.
cd "$top_srcdir" || exit 1
if [ -d .git ] && command -v git >/dev/null; then
	files=$(git ls-files | grep -v -E '^(NEWS|build-aux/.*)$')
else
	files=$(find . -type f \( -name '*.[ch]' -o -name '*.lua' -o -name '*.md' \
		-o -name '*.mk' -o -name '*.am' -o -name '*.bats' -o -name '*.bash' \
		-o -name '*.sh' -o -name '*.[0-9]' -o -name '*.in' -o -name 'run' \) \
		! -path './autom4te.cache/*' ! -path './build-aux/*' ! -name 'Makefile.in' ! -name NEWS |
		sed 's|^\./||')
fi
n=0
fail=0
check() { # description, offending lines (empty = ok)
	n=$((n + 1))
	if [ -z "$2" ]; then
		echo "ok $n - $1"
	else
		fail=1
		echo "not ok $n - $1"
		printf '%s\n' "$2" | sed 's/^/# /'
	fi
}
# shellcheck disable=SC2086
out=$(grep -n -I -E '\.\./shared|shared[/]spec|\.\./seed/' $files 2>/dev/null | grep -v '^tests/refs\.sh:')
check 'no path outside the checkout' "$out"
# shellcheck disable=SC2086
out=$(grep -n -I -E '(library|daemon|quality)\.md' $(printf '%s\n' $files | grep -v '^doc/') \
	2>/dev/null | grep -v '^tests/refs\.sh:' |
	sed -E 's#doc/([a-z-]+-)?(library|daemon|quality)\.md##g' | grep -E '(library|daemon|quality)\.md')
check 'the contract pages are cited by their path in doc/' "$out"
missing=
# shellcheck disable=SC2086
for ref in $(grep -h -o -I -E 'doc/[a-z-]+\.md' $files 2>/dev/null | sort -u); do
	[ -f "$ref" ] || missing="$missing $ref"
done
check 'every cited doc/ page exists' "$missing"
# shellcheck disable=SC2086
out=$(grep -n -I -E '[Ee]ngineer [A-Z][0-9]|\b[Ii]ssues? #?[0-9]+\b|Owner: ' $files 2>/dev/null |
	grep -v '^tests/refs\.sh:')
check 'no team or issue labels in comments' "$out"
# The daemon's own modules and its host binding are required plainly.
# shellcheck disable=SC2086
out=$(grep -n -E 'pcall\(require,|local function has\(' $(printf '%s\n' $files | grep '^lib/fibersd/') 2>/dev/null)
check 'lib/fibersd requires its modules plainly' "$out"
echo "1..$n"
exit $fail
