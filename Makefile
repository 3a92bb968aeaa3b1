# ngx_http_reductrai_module
#
#   make            build objs/ngx_http_reductrai_module.so and objs/reductrai
#   make run        install what is missing, build, run conf/demo.conf
#   make test       install what is missing, build, run the test suite
#   make asan       the module built with AddressSanitizer (objs/asan/)
#   make test-asan  the test suite against the ASan build
#   make fuzz       the libFuzzer targets, FUZZ_SECONDS (60) each (t/fuzz.mk)
#   make analyze    cppcheck and gcc -fanalyzer over module, core and CLI
#
# NGINX_SRC defaults to Debian's nginx-dev tree; an nginx.org tree works
# too (it is configured --with-compat).

NGINX_SRC   ?= /usr/share/nginx/src
NGINX       ?= /usr/sbin/nginx
CC          ?= cc
BUILD       := build
OBJS        := objs

CORE_DIR    := ngx_http_reductrai_module/core
# protobuf payload schemas, compiled by protoc-c at build time
PROTO_DIR   := ngx_http_reductrai_module/proto
PROTO_GEN   := $(OBJS)/proto
PROTO_SRCS  := $(patsubst $(PROTO_DIR)/%.proto,$(PROTO_GEN)/%.pb-c.c, \
                          $(wildcard $(PROTO_DIR)/*.proto))
CORE_SRCS   := $(wildcard $(CORE_DIR)/*.c) $(PROTO_SRCS)
CORE_HDRS   := $(wildcard $(CORE_DIR)/*.h) $(PROTO_SRCS:.c=.h)
MODULE_SRCS := $(wildcard ngx_http_reductrai_module/*.c \
                          ngx_http_reductrai_module/*.h \
                          $(PROTO_DIR)/*.proto) $(CORE_SRCS) \
               $(CORE_HDRS) config
CORE_LIBS   := -lzstd -lcurl -ljansson -lz -lcrypto -lprotobuf-c -lsnappy \
               -lpthread
CORE_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror \
               -Wno-unused-parameter -I$(CORE_DIR) -I$(PROTO_GEN)

UNIT_SRCS   := $(wildcard t/unit/test_*.c)
UNIT_BINS   := $(patsubst t/unit/%.c,$(OBJS)/unit/%,$(UNIT_SRCS))

ASAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
NODE_DIR    := t/node

# parts of the build that live with their code (cli/, bench/, packaging/)
# add their targets to these
ALL_TARGETS  := module
TEST_TARGETS := module unit node

# plain "make" builds "all", whatever rules the fragments define first
.DEFAULT_GOAL := all

include $(wildcard */*.mk)

.PHONY: all module unit asan node deps run test test-asan analyze clean

all: $(ALL_TARGETS)

module: $(OBJS)/ngx_http_reductrai_module.so

# one protoc-c run writes both files of a schema (protobuf-c-compiler,
# which "make", "make test" and the package's Build-Depends install)
$(PROTO_GEN)/%.pb-c.c $(PROTO_GEN)/%.pb-c.h: $(PROTO_DIR)/%.proto
	@mkdir -p $(PROTO_GEN)
	protoc-c -I$(PROTO_DIR) --c_out=$(PROTO_GEN) $<

$(OBJS)/ngx_http_reductrai_module.so: $(MODULE_SRCS)
	tools/deps.sh build
	tools/build-module.sh $(NGINX_SRC) $(BUILD)/nginx $(OBJS)

asan: $(OBJS)/asan/ngx_http_reductrai_module.so

$(OBJS)/asan/ngx_http_reductrai_module.so: $(MODULE_SRCS)
	tools/deps.sh build
	tools/build-module.sh $(NGINX_SRC) $(BUILD)/nginx-asan $(OBJS)/asan \
	    "$(ASAN_FLAGS)" "$(ASAN_FLAGS)"

unit: $(UNIT_BINS)

$(OBJS)/unit/%: t/unit/%.c t/unit/unit.h $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(OBJS)/unit
	$(CC) $(CORE_CFLAGS) -It/unit -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

# protocol servers for the tests (S3, Azure, DuckDB), pinned in a lockfile
node: $(NODE_DIR)/node_modules/.package-lock.json

$(NODE_DIR)/node_modules/.package-lock.json: $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error

run:
	tools/deps.sh run
	$(MAKE) module
	tools/run-demo.sh $(NGINX)

test:
	tools/deps.sh test
	$(MAKE) $(TEST_TARGETS)
	prove -r t/

test-asan:
	tools/deps.sh test
	$(MAKE) asan $(TEST_TARGETS)
	TEST_NGINX_ASAN=1 prove -r t/

# static analysis: the core and CLI alone, the module with nginx's headers
# (as configured by the module build); every file is analysed, and any
# finding fails the target at the end
ANALYZE_INC := $(addprefix -I$(BUILD)/nginx/,objs src/core src/event \
                 src/event/modules src/os/unix src/http src/http/modules \
                 src/http/v2)
# the protoc-c output is generated code, not ours: included, not analysed
ANALYZE_SRCS := $(filter-out $(PROTO_SRCS),$(CORE_SRCS))

analyze: module
	cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
	    --enable=warning,portability -I$(CORE_DIR) -I$(PROTO_GEN) -Icli \
	    $(CORE_DIR) cli
	cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
	    --enable=warning,portability -I$(CORE_DIR) -I$(PROTO_GEN) \
	    $(ANALYZE_INC) ngx_http_reductrai_module/*.c
	rc=0; \
	for f in $(ANALYZE_SRCS) $(CLI_MAIN) $(CLI_SRCS); do \
	    gcc -fanalyzer -O1 -std=gnu11 -Werror -I$(CORE_DIR) -I$(PROTO_GEN) -Icli \
	        -c -o /dev/null $$f || rc=1; \
	done; \
	for f in ngx_http_reductrai_module/*.c; do \
	    gcc -fanalyzer -O1 -std=gnu11 -Werror -I$(CORE_DIR) -I$(PROTO_GEN) \
	        $(ANALYZE_INC) -c -o /dev/null $$f || rc=1; \
	done; \
	exit $$rc

clean:
	rm -rf $(OBJS) $(BUILD)
