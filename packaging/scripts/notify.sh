#!/bin/sh
# /opt/cig/scripts/notify.sh EVENT: run by cig-server on each event, as ciguser, not waited
# for (except "stop", given 5 s). EVENT is one of: start, stop, switch-lost,
# switch-recovered, relay-lost, relay-recovered.
#
# This example does nothing. Put installation specific actions here (alarms, mail, SNMP
# traps), for example:
#
#   logger -t cig "cig-server event: $1"
#
# The package keeps your changes on upgrade (a conffile).
exit 0
