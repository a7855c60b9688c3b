# cig .rpm %postun: on removal ($1 = 0) drop the cig-cli link. RPM has no purge: cig.conf
# (a changed one is kept as cig.conf.rpmsave), userdata (the keystore) and the logs stay;
# delete /opt/cig and /var/log/cig by hand to remove them.
if [ "$1" -eq 0 ]; then
    if [ "$(readlink /usr/bin/cig-cli 2>/dev/null || true)" = /opt/cig/bin/cig-cli ]; then
        rm -f /usr/bin/cig-cli
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
fi
