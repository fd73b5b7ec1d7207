#!/bin/sh
# Prints the package version, valid for both dpkg and rpm (neither has a
# "-" in it: dpkg would read a Debian revision, rpm refuses it).
#   tag v1.2.3                      -> 1.2.3
#   tag v1.2.3-rc1                  -> 1.2.3~rc1 (sorts before 1.2.3)
#   4 commits after v1.2.3          -> 1.2.3+git4.<hash> (sorts after 1.2.3)
#   no tag                          -> 0.0.0~git<commit date>.<hash>
# "~" sorts before anything, also the empty string, in both dpkg (policy
# 5.6.12) and rpm (4.10 and later), so 0.0.0~git... sorts before 0.0.0
# and any first release.
set -eu
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	echo "$d" | sed -E 's/^v//; s/-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/; s/-/~/g'
else
	date=$(TZ=UTC git log -1 --date=format-local:%Y%m%d --format=%cd)
	echo "0.0.0~git$date.$(git rev-parse --short HEAD)"
fi
