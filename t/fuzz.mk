# make fuzz: the libFuzzer targets (t/fuzz/fuzz_*.c, every one found there),
# built with clang, ASan and UBSan, and linked with the same core sources
# the module runs.  Included by the top Makefile.
#
#   make fuzz                  build, then run each target FUZZ_SECONDS (60)
#   make fuzz FUZZ_SECONDS=600
#   make fuzz FUZZ_TARGETS="fuzz_reader fuzz_json"
#   make fuzz-build            build only (objs/fuzz/fuzz_*)
#
# A target that #includes a core .c file (to reach its static parsers) is
# linked without that file's object.  Corpora grow in objs/fuzz/corpus/,
# seeded by t/fuzz/seeds.pl and t/fuzz/corpus/<target>/; crashes land in
# objs/fuzz/artifacts/.  t/05-fuzz.t runs every target briefly in
# "make test" (60 s each when CI=true).

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SANS    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fno-omit-frame-pointer $(FUZZ_SANS) \
                -It/fuzz $(filter -I% -D%,$(CORE_CFLAGS))
FUZZ_SRCS    := $(wildcard t/fuzz/fuzz_*.c)
FUZZ_BINS    := $(patsubst t/fuzz/%.c,$(OBJS)/fuzz/%,$(FUZZ_SRCS))
FUZZ_CORE    := $(patsubst %.c,$(OBJS)/fuzz/core/%.o,$(notdir $(CORE_SRCS)))
FUZZ_TARGETS ?= $(notdir $(FUZZ_BINS))

TEST_TARGETS += fuzz-build

.PHONY: fuzz fuzz-build

# kept between builds (they are intermediate files to make)
.SECONDARY: $(FUZZ_CORE)

fuzz-build: $(FUZZ_BINS)

$(OBJS)/fuzz/core/%.o: $(CORE_DIR)/%.c $(CORE_HDRS)
	@mkdir -p $(OBJS)/fuzz/core
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# the protobuf-c code generated from the payload schemas
$(OBJS)/fuzz/core/%.o: $(PROTO_GEN)/%.c $(CORE_HDRS)
	@mkdir -p $(OBJS)/fuzz/core
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# the core objects the target's source does not #include itself
$(OBJS)/fuzz/%: t/fuzz/%.c t/fuzz/fuzz.h $(FUZZ_CORE) $(CORE_HDRS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
	    $(filter-out $(patsubst %.c,$(OBJS)/fuzz/core/%.o,$(shell sed -n \
	        's/^#include "\(ngx_http_reductrai_[a-z0-9_]*\.c\)"/\1/p' $<)), \
	        $(FUZZ_CORE)) $(CORE_LIBS)

fuzz:
	tools/deps.sh test
	$(MAKE) fuzz-build
	t/fuzz/run.sh $(OBJS)/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)
