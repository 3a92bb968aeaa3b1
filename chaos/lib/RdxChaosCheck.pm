package RdxChaosCheck;

# The assertions of the chaos suite, shared by chaos/chaos.pl (make chaos)
# and t/80-chaos.t: run them after RdxChaos->finish.

use strict;
use warnings;

use Exporter qw(import);
use Test::More;

our @EXPORT_OK = qw(check_scenarios check_summary);

sub _list {
    my ($what, $l) = @_;
    my @l = @$l;
    return is(scalar @l, 0, $what)
        || diag('ids: ' . join(' ', @l[0 .. ($#l > 19 ? 19 : $#l)]));
}


sub _non2xx {
    my ($s) = @_;
    my $n = 0;
    $n += $s->{status}{$_} for grep { !/^2/ } keys %{ $s->{status} };
    return $n;
}


sub check_scenarios {
    my ($c) = @_;
    my $v = $c->verdict;

    is($v->{cat_rc}, 0, 'reductrai cat reads the whole bucket');
    is($v->{verify_rc}, 0, "reductrai verify: $v->{verify}")
        or diag(join "\n", @{ $v->{verify_problems} });
    is(scalar keys %{ $v->{rec_twice} }, 0,
       'no record id is stored twice (no segment shipped under two keys)')
        or diag(explain $v->{rec_twice});
    is(scalar @{ $v->{foreign} }, 0, 'every record carries a test id');
    is(join('/', @{ $v->{spool_left} }), '0/0/0',
       'the spools are empty after the final quit');

    for my $s ($c->results) {
        my $n = $s->{name};
        my $ch = $s->{checks};

        cmp_ok($s->{acked}, '>=', 50, "$n: $s->{acked} of $s->{sent} "
               . 'requests acknowledged');
        _list("$n: acknowledged but missing from the bucket",
              $s->{ack_missing});
        _list("$n: accepted by an instance but missing from the bucket",
              $s->{accepted_missing});
        _list("$n: acknowledged but never answered by a vendor",
              $s->{vendor_missing});
        # "accepted" comes from the instances' access logs, whose line a
        # kill -9 may take between the answer and the log phase
        cmp_ok($s->{accepted}, '>=', $s->{acked},
               "$n: every acknowledged request was accepted by an instance")
            unless $n =~ /kill9/;

        if ($n eq 'steady') {
            is(_non2xx($s), 0, "$n: no request failed");
            is($s->{dup}, 0, "$n: no duplicate");
            is(scalar(grep { $_ > 0 } @{ $s->{per_inst} }), 3,
               "$n: least_conn spreads the load: "
               . join('/', @{ $s->{per_inst} }));
        }

        if ($n =~ /^(kill9-instance|kill9-worker|reload|upgrade
                     |haproxy-kill9)$/x) {
            is(_non2xx($s), 0, "$n: the load balancer hid the fault from "
               . 'every client');
        }

        if ($n eq 'storage-outage') {
            is(_non2xx($s), 0, "$n: forwarding went on");
            is(join(' ', keys %{ $ch->{health_codes} }), '200',
               "$n: /health of every instance stayed 200");
            is(join(' ', keys %{ $ch->{lb_health_codes} }), '200',
               "$n: /health through the load balancer stayed 200");
            is(join('/', @{ $ch->{storage_states} }),
               'disconnected/disconnected/disconnected',
               "$n: /health said storage disconnected");
            is($ch->{catchup_missing}, 0, "$n: the archive caught up after "
               . sprintf('%.1f s', $ch->{catchup_s} // -1));
        }

        if ($n eq 'vendor-outage') {
            is(_non2xx($s), 0, "$n: no request failed");
            cmp_ok($s->{by_backup}, '>', 0,
                   "$n: the backup vendor answered $s->{by_backup}");
        }

        if ($n =~ /vendor-all-down$/) {
            cmp_ok($s->{status}{502} // 0, '>', 0,
                   "$n: clients got 502 while no vendor was up");
            # a vendor's 502 is not the instance's fault: resending the
            # request to the others would only archive it three times
            is($s->{dup}, 0, "$n: vendor errors are not retried on other "
               . 'instances (no duplicate)');
            is($s->{lb_nolive}, 0, "$n: the load balancer never gave up on "
               . 'the instances (no "no live upstreams")');
            is($s->{accepted}, $s->{sent}, "$n: archiving went on: every "
               . 'request reached an instance and was archived');
        }

        if ($n eq 'spool-full') {
            ok($ch->{all_full}, "$n: every spool filled up");
            is(join(' ', @{ $ch->{direct} }), '503 5',
               "$n: an instance answers 503 with Retry-After: 5");
            is(join(' ', @{ $ch->{health} }), '503 unavailable',
               "$n: /health 503 unavailable while full");
            ok(defined $ch->{drain_s}, "$n: every instance is ready again "
               . 'once storage is back');
            cmp_ok(_non2xx($s), '>', 0, "$n: clients were refused");
            is(join(' ', @{ $ch->{via_lb} }), '503 5', "$n: through the "
               . 'load balancer too, 503 with Retry-After: 5');
            is($s->{status}{502} // 0, 0, "$n: no client got a 502");
        }
    }
}


# (passed, [failed names], [failed TODO names]) of every check so far
sub check_summary {
    my @d = Test::More->builder->details;
    my $pass = grep { $_->{actual_ok} } @d;
    my @fail = map { $_->{name} }
               grep { !$_->{actual_ok} && $_->{type} ne 'todo' } @d;
    my @todo = map { "$_->{name} (TODO: $_->{reason})" }
               grep { !$_->{actual_ok} && $_->{type} eq 'todo' } @d;
    return ($pass, \@fail, \@todo);
}


1;
