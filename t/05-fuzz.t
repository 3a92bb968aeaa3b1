#!/usr/bin/perl
# Runs every libFuzzer target (objs/fuzz/fuzz_*, "make fuzz-build") for a
# short while: 60 s each when CI=true, else FUZZ_SECONDS (default 3), so
# that "make test" catches a parser change that crashes on its seeds or
# soon after.  "make fuzz" is the long run.  A crash leaves its input in
# objs/fuzz/artifacts/.

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use RdxTest;

my $root = "$FindBin::Bin/..";
my @bins = sort grep { -x } glob("$root/objs/fuzz/fuzz_*");
my @srcs = sort glob("$root/t/fuzz/fuzz_*.c");
my $secs = ($ENV{CI} // '') eq 'true' ? 60 : ($ENV{FUZZ_SECONDS} // 3);

is(scalar @bins, scalar @srcs, 'every t/fuzz/fuzz_*.c is built (make '
   . 'fuzz-build)') or diag("built: @bins");

for my $bin (@bins) {
    my ($name) = $bin =~ m{/(fuzz_\w+)$};
    my $out = `'$root/t/fuzz/run.sh' '$root/objs/fuzz' $secs $name 2>&1`;
    my $rc = $? >> 8;
    my ($runs) = $out =~ /^\Q$name\E: (\d+) executions/m;

    is($rc, 0, "$name: no crash in $secs s") or diag($out);
    ok(($runs // 0) > 0, "$name ran " . ($runs // 0) . ' inputs');
    note($out);
}

# no nginx here: the check still runs, as at the end of every file
my $t = RdxTest->new;
$t->check_error_log;
done_testing();
