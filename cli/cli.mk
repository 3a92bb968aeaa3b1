# The reductrai command-line tool (cli/), built by plain "make" next to the
# module, from the same core sources (one implementation of the format and
# of storage).  Included by the top Makefile.

CLI_DIR    := cli
CLI_MAIN   := $(CLI_DIR)/reductrai.c
CLI_SRCS   := $(filter-out $(CLI_MAIN),$(wildcard $(CLI_DIR)/*.c))
CLI_HDRS   := $(wildcard $(CLI_DIR)/*.h)

ALL_TARGETS  += cli
TEST_TARGETS += cli

.PHONY: cli cli-asan

cli: $(OBJS)/reductrai

$(OBJS)/reductrai: $(CLI_MAIN) $(CLI_SRCS) $(CLI_HDRS) $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(OBJS)
	$(CC) $(CORE_CFLAGS) -I$(CLI_DIR) -o $@ $(CLI_MAIN) $(CLI_SRCS) \
	    $(CORE_SRCS) $(CORE_LIBS)

# the tool under AddressSanitizer: TEST_REDUCTRAI_CLI=objs/asan/reductrai
cli-asan: $(OBJS)/asan/reductrai

$(OBJS)/asan/reductrai: $(CLI_MAIN) $(CLI_SRCS) $(CLI_HDRS) $(CORE_SRCS) \
                        $(CORE_HDRS)
	@mkdir -p $(OBJS)/asan
	$(CC) $(CORE_CFLAGS) $(ASAN_FLAGS) -I$(CLI_DIR) -o $@ $(CLI_MAIN) \
	    $(CLI_SRCS) $(CORE_SRCS) $(CORE_LIBS)

# unit tests of the tool's own code (time arguments, checkpoint ranges)
$(OBJS)/unit/test_cli: t/unit/test_cli.c t/unit/unit.h $(CLI_SRCS) \
                       $(CLI_HDRS) $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(OBJS)/unit
	$(CC) $(CORE_CFLAGS) -I$(CLI_DIR) -It/unit -o $@ $< $(CLI_SRCS) \
	    $(CORE_SRCS) $(CORE_LIBS)

# "make asan" (and so "make test-asan") builds the tool with ASan too; the
# tests use objs/asan/reductrai under TEST_NGINX_ASAN
asan: $(OBJS)/asan/reductrai
