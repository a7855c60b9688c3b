# cig .rpm %preun: on removal ($1 = 0) stop and disable the services.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl disable --now cig-server.service cig-relay.service || true
fi
