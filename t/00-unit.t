#!/usr/bin/perl
# Runs the C unit tests of the nginx-free core (objs/unit/test_*), each as a
# subtest, passing their TAP through.

use strict;
use warnings;
use Test::More;
use FindBin;

my $root = "$FindBin::Bin/..";
my @bins = sort glob("$root/objs/unit/test_*");

ok(@bins > 0, 'unit test binaries are built (make unit)');

for my $bin (@bins) {
    my ($name) = $bin =~ m{/(test_\w+)$};
    subtest $name => sub {
        my $out = `$bin 2>&1`;
        my $rc = $? >> 8;
        my ($plan) = $out =~ /^1\.\.(\d+)$/m;
        my @fail = $out =~ /^(not ok .*)$/mg;
        ok(defined $plan && $plan > 0, "$name ran $plan checks")
            or diag($out);
        is(scalar(@fail), 0, "$name: no failed check")
            or diag(join("\n", @fail), "\n", $out);
        is($rc, 0, "$name exits 0") or diag($out);
    };
}

done_testing();
