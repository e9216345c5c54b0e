#!/bin/sh
# Install what the tests need from Debian's packages, only when something is missing.
set -e
PKGS="build-essential libcriterion-dev python3 python3-kazoo python3-pytest python3-pytest-timeout libzookeeper-mt-dev zookeeper-bin zookeeper netcat-openbsd clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing test dependencies:$missing"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
