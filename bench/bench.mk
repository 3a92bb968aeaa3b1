# make bench: the benchmark (bench/bench.pl), included by the top Makefile.
#
#   make bench                 the whole run, under 10 minutes on 2 cores
#   make bench BENCH_ARGS=--quick
#   make bench BENCH_ARGS="--only archive,encode"

BENCH_TOOL  := $(OBJS)/bench/rdxbench
BENCH_ARGS  ?=

.PHONY: bench bench-tool

bench:
	tools/deps.sh bench
	$(MAKE) module bench-tool
	bench/bench.pl $(BENCH_ARGS)

bench-tool: $(BENCH_TOOL)

$(BENCH_TOOL): bench/rdxbench.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(OBJS)/bench
	$(CC) $(CORE_CFLAGS) -o $@ bench/rdxbench.c $(CORE_SRCS) $(CORE_LIBS)
