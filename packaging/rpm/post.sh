# cig .rpm %post: users, directories, the cig-cli link and the units (setup.sh).
# $1 is the number of installed cig packages after this one: 1 install, 2 upgrade.
if [ "$1" -ge 2 ]; then
    sh /usr/share/cig/setup.sh upgrade
else
    sh /usr/share/cig/setup.sh install
fi
