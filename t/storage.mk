# A command line over the storage interface for the storage tests
# (t/5x-storage-*.t): objs/rdx-storage-tool.  Included by the top Makefile.

STORAGE_TOOL := $(OBJS)/rdx-storage-tool

TEST_TARGETS += $(STORAGE_TOOL)

$(STORAGE_TOOL): t/unit/storage_tool.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(OBJS)
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)
