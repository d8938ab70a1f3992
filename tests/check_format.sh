#!/bin/sh
# The tree's C sources follow .clang-format. Exits 77 (skipped) without clang-format.
command -v clang-format >/dev/null 2>&1 || exit 77
cd "$1" || exit 1
bad=0
for f in $(find proto store api tools tests -name '*.[ch]' | sort); do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f (run clang-format -i $f)"
		bad=1
	fi
done
exit $bad
