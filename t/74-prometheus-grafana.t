#!/usr/bin/perl
# Prometheus alerts (promtool check rules, promtool test rules) and the
# Grafana dashboard (valid JSON, valid PromQL, the panels the deployment
# guide asks for); every metric either of them reads, and every label they
# group by, is one the running module exports on /metrics.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP ();
use Test::More;

use RdxTest qw(wait_for);
use RdxDeploy qw(slurp);

my $t = RdxTest->new;
my $dir = $t->dir;
my $repo = RdxDeploy::repo;
my $prom = "$repo/packaging/prometheus";


# --- what the module exports ------------------------------------------------

my $up = $t->start_upstream(name => 'vendor', status => 202,
                            body => '{"status":"ok"}');
$t->mkdir_worker('archive');
$t->mkdir_worker('spool');
$t->write_config(http => <<'EOF');
    reductrai_storage      file://%%DIR%%/archive;
    reductrai_spool        %%DIR%%/spool;
    reductrai_segment_age  1s;

    upstream vendor {
        zone    vendor 64k;
        server  127.0.0.1:%%PORT_vendor%%;
    }

    server {
        listen  127.0.0.1:%%PORT_http%%;

        location / {
            reductrai         on;
            reductrai_stream  metrics;
            proxy_pass        http://vendor;
        }

        location = /health {
            reductrai_health  upstream=vendor;
        }

        location = /metrics {
            reductrai_metrics;
        }
    }
EOF
$t->start;

for my $i (1 .. 5) {
    my $r = $t->http(path => '/api/v2/series', body => qq({"n":$i}),
                     headers => [ 'Content-Type' => 'application/json' ]);
    is($r->{status}, 202, "request $i forwarded") if $i == 1;
}

# after an upload, reductrai_storage_connected exists too
my $metrics;
ok(wait_for(sub {
    $metrics = $t->http(path => '/metrics')->{body};
    return $metrics =~ /^reductrai_storage_connected 1$/m
        && $metrics =~ /^reductrai_upstream_responses_total\{[^}]*class="2xx"\} 5$/m;
}, 20), 'the module has stored a segment and counted the responses')
    or diag($metrics);

my %exported;       # name => { label => 1 }
for my $line (split /\n/, $metrics) {
    if ($line =~ /^# TYPE (\S+) \w+$/) {
        $exported{$1} //= {};
    } elsif ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? \S+$/) {
        my ($name, $labels) = ($1, $2 // '');
        $exported{$name} //= {};
        $exported{$name}{$_} = 1 for $labels =~ /(\w+)="/g;
    }
}
cmp_ok(scalar keys %exported, '>=', 15,
       'the module exports ' . scalar(keys %exported) . ' metrics');

# Prometheus adds these to every series, and computes up itself.
my %target_labels = map { $_ => 1 } qw(job instance);
my %prometheus = (up => 1);

# every reductrai_* name an expression reads is exported, and so is every
# label it groups by
sub check_names {
    my ($what, @exprs) = @_;
    my (%seen, %labels);
    for my $e (@exprs) {
        $seen{$_}++ for $e =~ /\b(reductrai_[a-z0-9_]+)\b/g;
        $seen{$_}++ for grep { $prometheus{$_} } $e =~ /\b([a-z]\w*)\{/g;
        while ($e =~ /\bby \(([^)]*)\)\s*\(\s*\w+\(\s*(\w+)|\bby \(([^)]*)\)\s*\(\s*(\w+)\{/g) {
            my ($ls, $m) = defined $1 ? ($1, $2) : ($3, $4);
            $labels{"$m:$_"}++ for split /\s*,\s*/, $ls;
        }
    }
    ok(%seen, "$what reads metrics: " . join(' ', sort keys %seen));
    for my $name (sort keys %seen) {
        ok(exists $exported{$name} || $prometheus{$name},
           "$what: $name is exported by the module");
    }
    for my $ml (sort keys %labels) {
        my ($m, $l) = split /:/, $ml;
        ok($target_labels{$l} || $exported{$m}{$l},
           "$what: $m has the label $l");
    }
    return \%seen;
}


# --- Prometheus alerts --------------------------------------------------------

{
    my ($rc, $out) = RdxDeploy::run('promtool', 'check', 'rules',
                                    "$prom/alerts.yml");
    is($rc, 0, 'promtool check rules alerts.yml') or diag($out);
    like($out, qr/SUCCESS: (\d+) rules found/, 'rules found');

    ($rc, $out) = RdxDeploy::run({ cwd => $prom }, 'promtool', 'test',
                                 'rules', 'alerts_test.yml');
    is($rc, 0, 'promtool test rules alerts_test.yml') or diag($out);
    like($out, qr/SUCCESS/, 'alert unit tests pass');

    for my $f (qw(alerts.yml alerts_test.yml)) {
        ($rc, $out) = RdxDeploy::run('yamllint', '-f', 'parsable', '-c',
                                     "$repo/packaging/yamllint.yml",
                                     "$prom/$f");
        is($rc . $out, '0', "yamllint $f") or diag($out);
    }

    my ($doc) = RdxDeploy::yaml_docs("$prom/alerts.yml");
    my @rules = map { @{ $_->{rules} } } @{ $doc->{groups} };
    my %alert = map { $_->{alert} => $_ } @rules;

    for my $a (qw(ReductrAIInstanceDown ReductrAIHighErrorRate
                  ReductrAIStorageDown ReductrAIArchiveLag
                  ReductrAISpoolFilling))
    {
        ok($alert{$a}, "alert $a");
    }
    is($alert{ReductrAIInstanceDown}{expr}, 'up{job="reductrai"} == 0',
       'instance down: up == 0');
    like($alert{ReductrAIHighErrorRate}{expr},
         qr/rate\(reductrai_requests_errors_total\[5m\]\)\)\s*\/\s*\(/,
         'error rate is a ratio errors / (accepted + errors)');
    like($alert{ReductrAIHighErrorRate}{expr}, qr/>\s*0\.05\s*$/, '> 5%');
    like($alert{ReductrAIStorageDown}{expr},
         qr/^reductrai_storage_connected == 0$/, 'storage disconnected');
    like($alert{ReductrAISpoolFilling}{expr},
         qr/reductrai_spool_bytes \/ reductrai_spool_max_bytes/,
         'spool filling is a ratio to max_size');

    # every alert is unit-tested
    my ($tests) = RdxDeploy::yaml_docs("$prom/alerts_test.yml");
    my %tested = map { $_->{alertname} => 1 }
                 map { @{ $_->{alert_rule_test} // [] } } @{ $tests->{tests} };
    for my $a (sort keys %alert) {
        ok($tested{$a}, "alerts_test.yml tests $a");
    }

    check_names('alerts.yml', map { $_->{expr} } @rules);
}


# --- Grafana dashboard --------------------------------------------------------

my $dash = eval { JSON::PP->new->decode(slurp("$repo/packaging/grafana/"
                                               . "dashboard.json")) };
ok($dash, 'dashboard.json is valid JSON') or diag($@);
$dash //= {};

ok($dash->{uid} && $dash->{title}, "dashboard $dash->{uid}: $dash->{title}");
ok($dash->{schemaVersion} >= 30, "schemaVersion $dash->{schemaVersion}");

my %var = map { $_->{name} => $_ } @{ $dash->{templating}{list} // [] };
is($var{datasource}{type}, 'datasource', 'a data source variable');
is($var{datasource}{query}, 'prometheus', 'of Prometheus');

my @panels = grep { $_->{type} ne 'row' } @{ $dash->{panels} // [] };
my (@exprs, %ids);
for my $p (@panels) {
    ok(!$ids{ $p->{id} }++, "panel $p->{id} has a unique id");
    ok(@{ $p->{targets} // [] }, "panel \"$p->{title}\" has queries");
    is($p->{datasource}{uid}, '${datasource}',
       "panel \"$p->{title}\": the data source variable");
    for my $g (qw(x y w h)) {
        ok(defined $p->{gridPos}{$g}, "panel \"$p->{title}\": gridPos.$g")
            or last;
    }
    for my $q (@{ $p->{targets} }) {
        like($q->{expr}, qr/job="\$job", instance=~"\$instance"/,
             "\"$p->{title}\" $q->{refId}: filtered by \$job and \$instance");
        push @exprs, $q->{expr};
    }
}

my $titles = join "\n", map { $_->{title} } @panels;
for my $want ([ throughput => qr/throughput per instance/i ],
              [ errors => qr/error/i ],
              [ 'compression ratio' => qr/compression ratio/i ],
              [ 'storage bytes' => qr/bytes (received|stored)/i ],
              [ lag => qr/lag/i ],
              [ 'spool fill' => qr/spool fill/i ],
              [ health => qr/ready|health/i ],
              [ 'LB distribution' => qr/load balancer distribution/i ])
{
    like($titles, $want->[1], "a panel for $want->[0]");
}

my @var_queries = map { ref $_->{query} ? $_->{query}{query} : () }
                   values %var;
check_names('dashboard.json', @exprs, @var_queries);

# Every query parses as PromQL: as recording rules, with Grafana's
# variables replaced the way Grafana does.
{
    my @rules;
    my $n = 0;
    for my $e (@exprs) {
        (my $q = $e) =~ s/\$__rate_interval/1m/g;
        $q =~ s/\$__range/6h/g;
        $q =~ s/\$job/reductrai/g;
        $q =~ s/\$instance/.*/g;
        push @rules, { record => 'reductrai:dashboard_' . ++$n, expr => $q };
    }
    my $f = $t->write_file("$dir/dashboard-rules.yml", JSON::PP->new->encode(
        { groups => [ { name => 'dashboard', rules => \@rules } ] }));
    my ($rc, $out) = RdxDeploy::run('promtool', 'check', 'rules', $f);
    is($rc, 0, "every dashboard query is valid PromQL ($n queries)")
        or diag($out);
}

$t->check_error_log;
done_testing;
