#!/bin/sh
# Installed as /usr/share/cig/setup.sh; run as root by the package's post-install script
# (.deb postinst configure, .rpm %post) on install and on upgrade. Idempotent: creates what is
# missing and never touches cig.conf's content or the keystore.
#
#   setup.sh install   first installation
#   setup.sh upgrade   upgrade (running services are restarted)
set -eu

# System group and user of the services; cigmail for the Maildir mailboxes.
getent group cigmail >/dev/null || groupadd --system cigmail
getent group ciguser >/dev/null || groupadd --system ciguser
if ! getent passwd ciguser >/dev/null; then
    useradd --system --gid ciguser --groups cigmail --home-dir /opt/cig --no-create-home \
        --shell /usr/sbin/nologin --comment "CIG gateway" ciguser
fi
# An existing ciguser (e.g. from an older package) joins cigmail too.
id -nG ciguser | tr ' ' '\n' | grep -qx cigmail || usermod -a -G cigmail ciguser

# The manual's layout. userdata holds the keystore: ciguser only.
install -d -m 0755 -o root -g root /opt/cig /opt/cig/bin /opt/cig/scripts
install -d -m 0700 -o ciguser -g ciguser /opt/cig/userdata
install -d -m 0750 -o ciguser -g ciguser /var/log/cig
# cig.conf may hold SIP and SMPP passwords: readable by the services' group only.
chown root:ciguser /opt/cig/cig.conf
chmod 0640 /opt/cig/cig.conf

# cig-cli on the PATH.
ln -sfn /opt/cig/bin/cig-cli /usr/bin/cig-cli

# systemd, when it runs here (not in containers or chroots without it).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload || true
    case "${1:-install}" in
        install) systemctl enable cig-relay.service cig-server.service || true ;;
        upgrade) systemctl try-restart cig-relay.service cig-server.service || true ;;
    esac
fi
