#!/bin/sh
# Prints a Debian changelog (one entry, for version $1, by maintainer $2)
# listing the subjects of the commits since the previous release tag, for
# /usr/share/doc/xdp-udp-ports/changelog.gz. The date is the commit's, so
# the same commit gives the same file.
set -eu
version=$1 maintainer=$2
if prev=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD^ 2>/dev/null); then
	range=$prev..HEAD
else
	range=HEAD
fi
echo "xdp-udp-ports ($version) unstable; urgency=medium"
echo
git log --no-merges --format=%s "$range" | awk '
{
	# one bullet per commit, wrapped at 78 columns
	line = "  *"
	for (i = 1; i <= NF; i++) {
		if (length(line) + 1 + length($i) > 78 && line != "  *" && line != "   ") {
			print line
			line = "   "
		}
		line = line " " $i
	}
	print line
}'
echo
echo " -- $maintainer  $(git log -1 --format=%cD)"
