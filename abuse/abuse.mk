# make abuse: the abuse suite (abuse/abuse.pl), included by the top
# Makefile.  One nginx with the module under slowloris, aborted bodies,
# pipelining, smuggling attempts, 10 000 keepalive connections, HTTP/2
# rapid reset and stream floods and decompression bombs, one after another
# and then all at once, while a steady client sends numbered records;
# report in abuse/results/latest.md.
#
#   make abuse                        full version (~90 s)
#   make abuse ABUSE_ARGS=--short     what t/81-abuse.t runs (~25 s)
#   make abuse ABUSE_ARGS="--only keepalive,bombs"

ABUSE_ARGS ?=

.PHONY: abuse

abuse:
	tools/deps.sh test
	$(MAKE) module cli
	ulimit -n 20000 && abuse/abuse.pl $(ABUSE_ARGS)
