# make chaos: the HA chaos suite (chaos/chaos.pl), included by the top
# Makefile.  Three nginx instances behind the nginx load balancer of
# conf/lb.conf (and HAProxy with conf/haproxy.cfg), one S3 bucket, a primary
# and a backup vendor, on this machine's loopback; report in
# chaos/results/latest.md.  docs/HA.md explains what it checks.
#
#   make chaos                        full version: 30 s outages (~6 min)
#   make chaos CHAOS_ARGS=--short     what t/80-chaos.t runs (~100 s)
#   make chaos CHAOS_ARGS="--only kill9-instance,storage-outage"
#   make chaos CHAOS_ARGS="--lb-conf /path/to/other-lb.conf"

CHAOS_ARGS ?=

.PHONY: chaos

chaos:
	tools/deps.sh test
	$(MAKE) module cli node
	chaos/chaos.pl $(CHAOS_ARGS)
