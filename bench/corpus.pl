#!/usr/bin/perl

# Seeded generator of the request bodies a Datadog fleet sends to its
# intake, following the public schemas:
#
#   /api/v2/series     {"series":[{"metric","type","points":[{"timestamp",
#                      "value"}],"resources":[{"name","type"}],"tags",
#                      "unit","interval","source_type_name"}]}
#                      deflate (zlib) from older agents, zstd from newer ones
#   /api/v1/series     {"series":[{"metric","points":[[ts,value]],"type",
#                      "host","tags","interval","device"}]}, deflate
#   /api/v1/check_run  [{"check","host_name","status","timestamp",
#                      "message","tags"}], deflate
#   /api/v2/logs       [{"message","status","timestamp","hostname",
#                      "service","ddsource","ddtags"}], gzip
#   /v1/traces         OTLP/HTTP JSON ExportTraceServiceRequest
#                      (resourceSpans / scopeSpans / spans), identity
#
# and, in pb.req, the same fleet's protobuf senders (issue 12):
#
#   /api/v2/series     datadog MetricPayload, zstd (Agent 7.62 and later)
#   /v1/metrics        OTLP ExportMetricsServiceRequest (gauges, sums and
#                      histograms per pod), gzip
#   /v1/logs           OTLP ExportLogsServiceRequest (the pods' log lines),
#                      gzip
#   /v1/traces         OTLP ExportTraceServiceRequest, gzip
#   /api/v1/write      Prometheus WriteRequest (node and pod metrics as
#                      scraped series with sorted labels), snappy
#
# A fleet of hosts runs pods of services; every host flushes series and
# service checks every 15 s (staggered), logs every 5 s, and every pod
# exports OTLP spans every 5 s.  Values follow a random walk per series,
# timestamps advance with the simulated clock, log messages come from
# templates with realistic variable parts.
#
# Usage: bench/corpus.pl [--seed 42] [--hosts 40] [--minutes 3]
#                        [--snappy RDXBENCH] --out DIR
#
# (--snappy: the rdxbench that snappy-compresses the remote-write bodies;
# without it they are identity.)  Writes four request files:
#   mix.req   the fleet's traffic in time order (archive size, encode speed)
#   b4k.req   identity JSON bodies of about 4 KiB   (proxy overhead)
#   b64k.req  identity JSON bodies of about 64 KiB  (proxy overhead)
#   pb.req    the protobuf bodies, kinds pb_* (rdxbench protobuf)
#
# Request file format, one request after the other:
#   "<kind> <path> <content-encoding|-> <wire bytes> <decoded bytes>\n"
#   followed by the wire bytes of the body.

use strict;
use warnings;

use Compress::Zlib qw(compress memGzip);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use Getopt::Long qw(GetOptions);
use POSIX qw(floor strftime);

my %opt = (seed => 42, hosts => 40, minutes => 3, out => 'bench/corpus');
GetOptions(\%opt, 'seed=i', 'hosts=i', 'minutes=f', 'out=s', 'snappy=s')
    or die "usage: $0 [--seed N] [--hosts N] [--minutes M] [--snappy TOOL] "
           . "--out DIR\n";

srand($opt{seed});

# 2025-01-01T00:00:00Z: payload timestamps are simulated, not "now"
my $EPOCH = 1735689600;


# ---------------------------------------------------------------- helpers

sub pick { $_[int rand @_] }
sub chance { rand() < $_[0] }
sub hex_id { join '', map { sprintf '%x', int rand 16 } 1 .. $_[0] }
sub num { my $v = shift; $v == int $v ? sprintf('%d', $v) : sprintf('%.15g', $v) }

# JSON string literal (the templates never hold bytes below 0x20 but \n, \t)
sub js {
    my $s = shift;
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/\n/\\n/g;
    $s =~ s/\t/\\t/g;
    return qq{"$s"};
}

sub jarr { '[' . join(',', map { js($_) } @_) . ']' }

sub uuid {
    my $h = hex_id(32);
    return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4),
        substr($h, 16, 4), substr($h, 20);
}

sub ip { join '.', 10, int rand 64, int rand 256, 1 + int rand 254 }

# a Poisson-ish count with mean m
sub around { my $m = shift; int($m * (0.5 + rand)) }


# ---------------------------------------------------------------- the fleet

my @SERVICES = (
    # name, language, framework scope, datastore, endpoints
    [ 'web-front',      'node',   'fastify', 'redis',
      [ 'GET /', 'GET /product/:id', 'GET /cart', 'POST /cart/items',
        'GET /search', 'GET /static/:file' ] ],
    [ 'web-api',        'go',     'net/http', 'postgresql',
      [ 'GET /api/v1/products', 'GET /api/v1/products/{id}',
        'GET /api/v1/users/{id}', 'POST /api/v1/sessions',
        'GET /api/v1/orders/{id}' ] ],
    [ 'checkout',       'java',   'spring-webmvc', 'postgresql',
      [ 'POST /api/v1/checkout', 'GET /api/v1/orders/{id}',
        'POST /api/v1/orders/{id}/confirm', 'GET /api/v1/shipping/quote' ] ],
    [ 'payments',       'java',   'spring-webmvc', 'postgresql',
      [ 'POST /v1/charges', 'POST /v1/refunds', 'GET /v1/charges/{id}',
        'POST /v1/webhooks/stripe' ] ],
    [ 'search',         'go',     'net/http', 'elasticsearch',
      [ 'GET /search', 'GET /suggest', 'POST /index/{doc}' ] ],
    [ 'auth',           'go',     'grpc', 'redis',
      [ 'auth.v1.Auth/Login', 'auth.v1.Auth/Refresh',
        'auth.v1.Auth/Validate' ] ],
    [ 'inventory',      'python', 'django', 'postgresql',
      [ 'GET /inventory/{sku}', 'POST /inventory/reserve',
        'POST /inventory/release' ] ],
    [ 'notification',   'python', 'celery', 'redis',
      [ 'send_email', 'send_push', 'send_sms' ] ],
    [ 'recommendation', 'python', 'flask', 'redis',
      [ 'GET /recommend/{user}', 'GET /similar/{item}' ] ],
    [ 'shipping',       'java',   'spring-webflux', 'mysql',
      [ 'GET /rates', 'POST /labels', 'GET /track/{id}' ] ],
    [ 'user-profile',   'node',   'express', 'mongodb',
      [ 'GET /profile/{id}', 'PUT /profile/{id}', 'GET /preferences' ] ],
    [ 'billing',        'java',   'spring-webmvc', 'postgresql',
      [ 'POST /invoices', 'GET /invoices/{id}', 'POST /subscriptions' ] ],
);

my @AZ = map { "us-east-1$_" } qw(a b c);
my @TYPES = qw(m5.xlarge m5.2xlarge c6i.2xlarge r6i.xlarge m6g.large);
my @AGENTS = qw(7.48.1 7.50.3 7.52.0 7.54.1 7.56.2);
my $CLUSTER = 'prod-use1';

my @fleet;

for my $i (0 .. $opt{hosts} - 1) {
    my %h = (
        name   => $i % 3 == 2
                  ? sprintf('gke-%s-pool-%d-%s', $CLUSTER, $i % 4, hex_id(8))
                  : sprintf('ip-10-%d-%d-%d.ec2.internal', 10 + $i % 6,
                            int rand 256, 1 + int rand 254),
        az     => pick(@AZ),
        type   => pick(@TYPES),
        agent  => pick(@AGENTS),
        env    => $i % 10 == 9 ? 'staging' : 'prod',
        offset => int rand 15,       # staggered flushes
        devices => [ 'nvme0n1p1', (chance(0.6) ? 'nvme1n1' : ()),
                     (chance(0.3) ? 'nvme2n1' : ()) ],
        ifaces => [ 'eth0', 'lo', (chance(0.7) ? ('cni0', 'eth1') : ()) ],
    );

    # older agents still send v1 series; the rest send v2, deflate before
    # 7.54, zstd since
    $h{v1} = $i % 5 == 4;
    $h{zstd} = !$h{v1} && $h{agent} ge '7.54';

    $h{tags} = [ "env:$h{env}", "availability-zone:$h{az}",
                 "instance-type:$h{type}", 'region:us-east-1',
                 "kube_cluster_name:$CLUSTER", 'cloud_provider:aws',
                 'team:' . pick(qw(platform shop payments data)) ];

    my $npods = 2 + int rand 4;

    for (1 .. $npods) {
        my $svc = pick(@SERVICES);
        my $rs = hex_id(9);
        my %pod = (
            svc     => $svc,
            service => $svc->[0],
            lang    => $svc->[1],
            version => sprintf('%d.%d.%d', 1 + int rand 3, int rand 20,
                               int rand 10),
            name    => sprintf('%s-%s-%s', $svc->[0], $rs, hex_id(5)),
            ns      => $svc->[0] =~ /^web/ ? 'frontend' : $svc->[0],
            cid     => hex_id(64),
            pid     => 1 + int rand 30000,
            rate    => 5 + int rand 60,         # requests per second
        );
        push @{ $h{pods} }, \%pod;
    }

    push @fleet, \%h;
}


# a random walk per series, keyed by name: values drift, never jump
my %walk;

sub walk {
    my ($key, $base, $spread) = @_;
    my $v = $walk{$key} //= $base * (0.5 + rand);
    $v += $spread * (rand() - 0.5);
    $v = $base * 0.05 if $v < $base * 0.05;
    return $walk{$key} = $v;
}


# ---------------------------------------------------------------- metrics

# [metric, type (1 count, 2 rate, 3 gauge), unit, base, spread, int?]
my @SYSTEM = (
    [ 'system.cpu.user',   3, 'percent', 35, 6 ],
    [ 'system.cpu.system', 3, 'percent', 8, 2 ],
    [ 'system.cpu.idle',   3, 'percent', 55, 6 ],
    [ 'system.cpu.iowait', 3, 'percent', 1.5, 0.5 ],
    [ 'system.cpu.stolen', 3, 'percent', 0.2, 0.1 ],
    [ 'system.cpu.guest',  3, 'percent', 0.01, 0.005 ],
    [ 'system.cpu.num_cores', 3, 'core', 8, 0, 1 ],
    [ 'system.load.1',     3, '', 2.5, 0.6 ],
    [ 'system.load.5',     3, '', 2.4, 0.3 ],
    [ 'system.load.15',    3, '', 2.3, 0.1 ],
    [ 'system.load.norm.1', 3, '', 0.3, 0.08 ],
    [ 'system.load.norm.5', 3, '', 0.3, 0.04 ],
    [ 'system.load.norm.15', 3, '', 0.3, 0.02 ],
    [ 'system.mem.total',  3, 'mebibyte', 31856, 0, 1 ],
    [ 'system.mem.used',   3, 'mebibyte', 18000, 300, 1 ],
    [ 'system.mem.free',   3, 'mebibyte', 4000, 300, 1 ],
    [ 'system.mem.usable', 3, 'mebibyte', 13000, 300, 1 ],
    [ 'system.mem.cached', 3, 'mebibyte', 9000, 100, 1 ],
    [ 'system.mem.buffered', 3, 'mebibyte', 400, 10, 1 ],
    [ 'system.mem.pct_usable', 3, 'fraction', 0.4, 0.01 ],
    [ 'system.swap.total', 3, 'mebibyte', 0, 0, 1 ],
    [ 'system.swap.free',  3, 'mebibyte', 0, 0, 1 ],
    [ 'system.uptime',     3, 'second', 1500000, 15, 1 ],
    [ 'system.proc.count', 3, 'process', 310, 8, 1 ],
    [ 'system.proc.queue_length', 3, 'process', 1.2, 0.8 ],
    [ 'system.fs.file_handles.used', 3, 'file', 9000, 200, 1 ],
    [ 'ntp.offset',        3, 'second', 0.0004, 0.0003 ],
    [ 'datadog.agent.running', 3, '', 1, 0, 1 ],
    [ 'datadog.agent.started', 1, '', 0, 0, 1 ],
    [ 'datadog.dogstatsd.packets', 1, 'packet', 900, 200, 1 ],
);

my @DISK = (
    [ 'system.disk.total',  3, 'kibibyte', 104857600, 0, 1 ],
    [ 'system.disk.used',   3, 'kibibyte', 45000000, 20000, 1 ],
    [ 'system.disk.free',   3, 'kibibyte', 59000000, 20000, 1 ],
    [ 'system.disk.in_use', 3, 'fraction', 0.43, 0.001 ],
    [ 'system.io.r_s',      2, 'request', 12, 6 ],
    [ 'system.io.w_s',      2, 'request', 80, 30 ],
    [ 'system.io.rkb_s',    2, 'kibibyte', 300, 150 ],
    [ 'system.io.wkb_s',    2, 'kibibyte', 2400, 800 ],
    [ 'system.io.await',    3, 'millisecond', 0.6, 0.3 ],
    [ 'system.io.util',     3, 'percent', 4, 2 ],
);

my @NET = (
    [ 'system.net.bytes_rcvd', 2, 'byte', 2500000, 600000 ],
    [ 'system.net.bytes_sent', 2, 'byte', 1800000, 500000 ],
    [ 'system.net.packets_in.count', 2, 'packet', 3000, 800 ],
    [ 'system.net.packets_out.count', 2, 'packet', 2600, 700 ],
    [ 'system.net.packets_in.error', 2, 'error', 0.01, 0.01 ],
);

my @CONTAINER = (
    [ 'container.cpu.usage',   2, 'nanocore', 250000000, 50000000 ],
    [ 'container.cpu.user',    2, 'nanocore', 200000000, 40000000 ],
    [ 'container.cpu.system',  2, 'nanocore', 40000000, 8000000 ],
    [ 'container.cpu.throttled', 2, 'nanosecond', 100000, 80000 ],
    [ 'container.memory.usage', 3, 'byte', 700000000, 3000000, 1 ],
    [ 'container.memory.rss',  3, 'byte', 500000000, 2000000, 1 ],
    [ 'container.memory.limit', 3, 'byte', 2147483648, 0, 1 ],
    [ 'container.io.read',     2, 'byte', 20000, 10000 ],
    [ 'container.io.write',    2, 'byte', 180000, 50000 ],
    [ 'container.net.rcvd',    2, 'byte', 600000, 150000 ],
    [ 'container.net.sent',    2, 'byte', 500000, 150000 ],
    [ 'kubernetes.cpu.usage.total', 3, 'nanocore', 240000000, 40000000 ],
    [ 'kubernetes.memory.usage', 3, 'byte', 690000000, 3000000, 1 ],
    [ 'kubernetes.memory.working_set', 3, 'byte', 520000000, 2000000, 1 ],
    [ 'kubernetes.containers.restarts', 3, '', 0, 0, 1 ],
    [ 'kubernetes.network.rx_bytes', 2, 'byte', 610000, 150000 ],
    [ 'kubernetes.network.tx_bytes', 2, 'byte', 490000, 150000 ],
);


sub pod_tags {
    my ($h, $p) = @_;
    return ("kube_namespace:$p->{ns}", "kube_deployment:$p->{service}",
            "pod_name:$p->{name}", 'kube_container_name:app',
            "container_name:app", "container_id:$p->{cid}",
            "image_name:registry.example.com/shop/$p->{service}",
            "image_tag:$p->{version}", "short_image:$p->{service}",
            "service:$p->{service}", "version:$p->{version}",
            "env:$h->{env}");
}


# every series a host reports at one flush: [metric, type, unit, value, tags]
sub host_series {
    my ($h, $t) = @_;
    my @s;

    my $add = sub {
        my ($def, $key, @tags) = @_;
        my ($m, $type, $unit, $base, $spread, $int) = @$def;
        my $v = $spread ? walk("$h->{name} $m $key", $base, $spread) : $base;
        $v = int $v if $int;
        push @s, [ $m, $type, $unit, $v, \@tags ];
    };

    $add->($_, '') for @SYSTEM;

    for my $d (@{ $h->{devices} }) {
        $add->($_, $d, "device:/dev/$d", "device_name:$d") for @DISK;
    }

    for my $i (@{ $h->{ifaces} }) {
        $add->($_, $i, "device:$i") for @NET;
    }

    for my $p (@{ $h->{pods} }) {
        my @pt = pod_tags($h, $p);
        $add->($_, $p->{name}, @pt) for @CONTAINER;

        # APM trace metrics, per endpoint and status
        for my $ep (@{ $p->{svc}[4] }) {
            my @tt = ("env:$h->{env}", "service:$p->{service}",
                      "version:$p->{version}", "resource_name:$ep",
                      'span.kind:server', "peer.hostname:$h->{name}");
            my $hits = int walk("$p->{name} $ep hits", $p->{rate} * 3, 5);
            push @s, [ 'trace.http.request.hits', 1, 'hit', $hits,
                       [ @tt, 'http.status_code:200' ] ];
            push @s, [ 'trace.http.request.errors', 1, 'error',
                       int(rand 3) ? 0 : 1 + int rand 3,
                       [ @tt, 'http.status_code:500' ] ];
            push @s, [ 'trace.http.request.duration', 1, 'second',
                       $hits * walk("$p->{name} $ep lat", 0.04, 0.01),
                       \@tt ];
        }

        # the service's own metrics
        push @s, [ "$p->{service}.requests", 1, 'request',
                   int walk("$p->{name} req", $p->{rate} * 15, 20),
                   [ @pt, 'method:' . pick(qw(GET POST)) ] ];
        push @s, [ "$p->{service}.queue.depth", 3, 'item',
                   int walk("$p->{name} q", 40, 10), \@pt ];
        push @s, [ "$p->{service}.db.pool.active", 3, 'connection',
                   int walk("$p->{name} db", 12, 3),
                   [ @pt, "db.system:$p->{svc}[3]" ] ];
        push @s, [ 'jvm.heap_memory', 3, 'byte',
                   int walk("$p->{name} heap", 900000000, 20000000),
                   \@pt ] if $p->{lang} eq 'java';
        push @s, [ 'runtime.go.num_goroutine', 3, '',
                   int walk("$p->{name} gr", 300, 30), \@pt ]
            if $p->{lang} eq 'go';
    }

    return \@s;
}


sub series_v2 {
    my ($h, $t, $list) = @_;
    my @items;

    for my $s (@$list) {
        my ($m, $type, $unit, $v, $tags) = @$s;
        my $item = '{"metric":' . js($m) . ',"type":' . $type
            . ',"points":[{"timestamp":' . $t . ',"value":' . num($v) . '}]'
            . ',"resources":[{"name":' . js($h->{name}) . ',"type":"host"}]'
            . ',"tags":' . jarr(@{ $h->{tags} }, @$tags);
        $item .= ',"unit":' . js($unit) if $unit ne '';
        $item .= ',"interval":15' if $type != 3;
        $item .= ',"source_type_name":"System"' if $m =~ /^system\./;
        push @items, $item . '}';
    }

    return \@items;
}


sub series_v1 {
    my ($h, $t, $list) = @_;
    my @items;
    my %type = (1 => 'count', 2 => 'rate', 3 => 'gauge');

    for my $s (@$list) {
        my ($m, $type, $unit, $v, $tags) = @$s;
        my ($dev) = map { /^device:(.*)/ ? $1 : () } @$tags;
        push @items, '{"metric":' . js($m) . ',"points":[[' . $t . ','
            . num($v) . ']],"type":"' . $type{$type} . '","host":'
            . js($h->{name}) . ',"tags":' . jarr(@{ $h->{tags} }, @$tags)
            . ',"interval":' . ($type == 3 ? 0 : 15) . ',"device":'
            . (defined $dev ? js($dev) : 'null') . '}';
    }

    return \@items;
}


# ---------------------------------------------------------------- checks

my @CHECK_ERRORS = (
    'Connection refused', 'connect timeout after 5 seconds',
    'HTTP 503 Service Unavailable', 'certificate expires in 6 days',
    'could not connect to server: Connection timed out',
);

sub check_runs {
    my ($h, $t) = @_;
    my @items;

    my $add = sub {
        my ($check, @tags) = @_;
        my $status = chance(0.97) ? 0 : pick(1, 2, 3);
        push @items, '{"check":' . js($check) . ',"host_name":'
            . js($h->{name}) . ',"status":' . $status . ',"timestamp":' . $t
            . ',"message":' . js($status ? pick(@CHECK_ERRORS) : '')
            . ',"tags":' . jarr(@{ $h->{tags} }, @tags) . '}';
    };

    $add->('datadog.agent.up');
    $add->('datadog.agent.check_status', "check:$_")
        for qw(cpu disk io load memory network ntp uptime kubelet
               container docker);
    $add->('ntp.in_sync');
    $add->('disk.read_write', "device:/dev/$_") for @{ $h->{devices} };
    $add->('kubernetes.kubelet.check', "check:$_")
        for qw(ping syncloop log);

    for my $p (@{ $h->{pods} }) {
        $add->('http.can_connect', "url:http://$p->{name}:8080/health",
               "instance:$p->{service}", "service:$p->{service}");
        $add->("$p->{svc}[3].can_connect", "service:$p->{service}",
               "db:$p->{service}", "host:$p->{svc}[3].$p->{ns}.svc");
    }

    return \@items;
}


# ---------------------------------------------------------------- logs

my @UA = (
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 '
        . '(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) '
        . 'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 '
        . 'Mobile/15E148 Safari/604.1',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 '
        . '(KHTML, like Gecko) Version/17.1 Safari/605.1.15',
    'okhttp/4.12.0', 'Go-http-client/1.1', 'kube-probe/1.28',
    'python-requests/2.31.0',
);

my @COUNTRIES = qw(US US US DE FR GB CA BR JP IN AU NL);

sub path_of {
    my $ep = shift;
    my ($method, $path) = $ep =~ m{^(\S+) (\S+)$} ? ($1, $2) : ('POST', "/$ep");
    $path =~ s/\{id\}|:id/int rand 900000/ge;
    $path =~ s/\{(\w+)\}|:(\w+)/hex_id(8)/ge;
    return ($method, $path);
}

sub java_exception {
    my ($svc) = @_;
    my $pkg = "com.example.$svc";
    $pkg =~ s/-//g;
    return join "\n",
        'org.springframework.dao.DataAccessResourceFailureException: '
            . 'Unable to acquire JDBC Connection; nested exception is '
            . 'java.sql.SQLTransientConnectionException: HikariPool-1 - '
            . 'Connection is not available, request timed out after 30000ms.',
        "\tat $pkg.repository.OrderRepository.findById(OrderRepository.java:"
            . (40 + int rand 200) . ')',
        "\tat $pkg.service.OrderService.load(OrderService.java:"
            . (40 + int rand 200) . ')',
        "\tat $pkg.web.OrderController.get(OrderController.java:"
            . (20 + int rand 100) . ')',
        "\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor."
            . 'invoke(DirectMethodHandleAccessor.java:103)',
        "\tat org.springframework.web.servlet.FrameworkServlet.service("
            . 'FrameworkServlet.java:885)',
        "\tat org.apache.catalina.core.ApplicationFilterChain.doFilter("
            . 'ApplicationFilterChain.java:166)',
        "\t... 48 common frames omitted";
}

# one log line of a pod: (message, status, source)
sub log_line {
    my ($h, $p, $ms) = @_;
    my $ts = strftime('%Y-%m-%dT%H:%M:%S', gmtime int $ms / 1000)
        . sprintf('.%03dZ', $ms % 1000);
    my ($method, $path) = path_of(pick(@{ $p->{svc}[4] }));
    my $status = chance(0.93) ? 200 : pick(201, 204, 301, 400, 401, 404,
                                           429, 500, 502, 503);
    my $trace = sprintf '%d', int rand 2**53;
    my $lat = sprintf '%.3f', 0.002 + rand() * rand() * 0.8;
    my $lvl = $status >= 500 ? 'error' : $status >= 400 ? 'warn' : 'info';

    if ($p->{service} =~ /^web-front/ && chance(0.6)) {
        my $clf = strftime('%d/%b/%Y:%H:%M:%S +0000', gmtime int $ms / 1000);
        return (sprintf('%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s" '
                        . 'rt=%s uct="0.000" uht="%s" urt="%s" '
                        . 'request_id=%s', ip(), $clf, $method, $path,
                        $status, 200 + int rand 40000,
                        chance(0.5) ? '-' : 'https://shop.example.com/',
                        pick(@UA), $lat, $lat, $lat, hex_id(32)),
                $lvl, 'nginx');
    }

    if ($p->{lang} eq 'java') {
        my $thread = sprintf 'http-nio-8080-exec-%d', 1 + int rand 200;
        my $cls = pick(qw(c.e.s.web.OrderController c.e.s.service.OrderService
                          c.e.s.client.PaymentClient o.h.e.j.s.SqlExceptionHelper
                          c.e.s.service.PricingService));
        my $msg = $status >= 500 && chance(0.5)
            ? "Request failed: $method $path\n" . java_exception($p->{service})
            : pick("Order ${\ uuid()} placed for customer ${\ int rand 500000} "
                   . 'total=' . sprintf('%.2f', rand 400) . ' currency=USD items='
                   . (1 + int rand 6),
                   "Completed $method $path status=$status duration=${\ int($lat * 1000)}ms",
                   'Fetched ' . (1 + int rand 50) . " rows from orders in ${\ int rand 40}ms",
                   "Cache miss for key price:${\ hex_id(12)}, loading from DB",
                   "Calling payments POST /v1/charges idempotency_key=${\ uuid()}");
        return (sprintf('%s %5s 1 --- [%s] %-40s : %s dd.service=%s '
                        . 'dd.env=%s dd.version=%s dd.trace_id=%s dd.span_id=%d',
                        $ts, uc($lvl eq 'warn' ? 'WARN' : $lvl), $thread, $cls,
                        $msg, $p->{service}, $h->{env}, $p->{version}, $trace,
                        int rand 2**53),
                $lvl, 'java');
    }

    if ($p->{lang} eq 'go') {
        return ('{"level":"' . $lvl . '","ts":"' . $ts . '","caller":"'
                . pick(qw(server/handler.go:142 server/handler.go:88
                          store/pg.go:311 cache/redis.go:57 grpc/auth.go:203))
                . '","msg":"' . pick('request served', 'query executed',
                                     'token validated', 'cache refreshed')
                . '","method":"' . $method . '","path":"' . $path
                . '","status":' . $status . ',"took_ms":' . ($lat * 1000)
                . ',"bytes":' . int(rand 30000) . ',"remote":"' . ip()
                . '","trace_id":"' . hex_id(32) . '","span_id":"'
                . hex_id(16) . '"}',
                $lvl, 'go');
    }

    if ($p->{lang} eq 'python') {
        return (pick(sprintf('%s %s [%s] %s %s %d %sms user=%d country=%s',
                             $ts, uc $lvl, $p->{service}, $method, $path,
                             $status, int($lat * 1000), int rand 900000,
                             pick(@COUNTRIES)),
                     sprintf('%s %s [celery.worker] Task %s.%s[%s] succeeded '
                             . 'in %.6fs: None', $ts, 'INFO', $p->{service},
                             pick(qw(send_email send_push reindex sync_stock)),
                             uuid(), $lat),
                     sprintf('%s %s [django.request] %s %s took %s s, '
                             . '%d queries', $ts, uc $lvl, $method, $path,
                             $lat, 1 + int rand 30)),
                $lvl, 'python');
    }

    return (sprintf('{"level":%d,"time":%d,"pid":%d,"hostname":"%s",'
                    . '"reqId":"req-%s","req":{"method":"%s","url":"%s",'
                    . '"remoteAddress":"%s"},"res":{"statusCode":%d},'
                    . '"responseTime":%s,"msg":"request completed"}',
                    $lvl eq 'error' ? 50 : $lvl eq 'warn' ? 40 : 30, $ms,
                    $p->{pid}, $p->{name}, hex_id(6), $method, $path, ip(),
                    $status, $lat * 1000),
            $lvl, 'nodejs');
}

sub log_items {
    my ($h, $t, $n) = @_;
    my @items;

    for (1 .. $n) {
        my $p = pick(@{ $h->{pods} });
        my $ms = $t * 1000 - int rand 5000;
        my ($msg, $status, $src) = log_line($h, $p, $ms);
        push @items, '{"message":' . js($msg) . ',"status":"' . $status
            . '","timestamp":' . $ms . ',"hostname":' . js($h->{name})
            . ',"service":"' . $p->{service} . '","ddsource":"' . $src
            . '","ddtags":' . js(join ',', "env:$h->{env}",
                                 "version:$p->{version}",
                                 "kube_namespace:$p->{ns}",
                                 "pod_name:$p->{name}",
                                 "kube_deployment:$p->{service}",
                                 'container_name:app',
                                 "image_tag:$p->{version}",
                                 "kube_cluster_name:$CLUSTER",
                                 "availability-zone:$h->{az}")
            . '}';
    }

    return \@items;
}


# ---------------------------------------------------------------- OTLP

sub kv {
    my ($k, $v) = @_;
    my $val = $v =~ /^-?\d+$/ && length $v < 16
        ? '{"intValue":"' . $v . '"}' : '{"stringValue":' . js($v) . '}';
    return '{"key":"' . $k . '","value":' . $val . '}';
}

# the spans of one trace through a pod: a server span and its children,
# each made by $render->(trace, id, parent, name, kind, start, end,
# [[key, value], ...], error) from hex ids and times in nanoseconds
sub trace_spans {
    my ($h, $p, $t, $render) = @_;
    my $trace = hex_id(32);
    my $root = hex_id(16);
    my $start = ($t - rand 5) * 1e9;
    my $dur = int((0.002 + rand() * rand() * 0.5) * 1e9);
    my $ep = pick(@{ $p->{svc}[4] });
    my ($method, $path) = path_of($ep);
    my $status = chance(0.97) ? 200 : pick(404, 500, 503);
    my $route = $ep =~ /^\S+ (\S+)$/ ? $1 : $ep;
    my @spans;

    push @spans, $render->($trace, $root, '', "$method $route", 2, $start,
            $start + $dur,
            [ [ 'http.request.method', $method ], [ 'url.path', $path ],
              [ 'http.route', $route ], [ 'url.scheme', 'http' ],
              [ 'server.address', $p->{name} ], [ 'server.port', 8080 ],
              [ 'http.response.status_code', $status ],
              [ 'network.protocol.version', '1.1' ],
              [ 'user_agent.original', pick(@UA) ],
              [ 'client.address', ip() ] ],
            $status >= 500 ? "HTTP $status" : undef);

    my $at = $start + $dur * 0.05;

    for (1 .. 1 + int rand 5) {
        my $id = hex_id(16);
        my $d = $dur * 0.15 * rand;
        my $db = $p->{svc}[3];

        if (chance(0.6)) {
            my $table = pick(qw(orders order_items customers products
                                 inventory sessions invoices));
            push @spans, $render->($trace, $id, $root, "SELECT $table", 3,
                    $at, $at + $d,
                    [ [ 'db.system', $db ], [ 'db.name', $p->{service} ],
                      [ 'db.statement', "SELECT * FROM $table WHERE id = ? "
                                        . 'AND tenant_id = ? LIMIT ?' ],
                      [ 'db.operation', 'SELECT' ],
                      [ 'server.address', "$db.$p->{ns}.svc" ],
                      [ 'server.port', 5432 ] ]);
        } else {
            my $peer = pick(@SERVICES)->[0];
            push @spans, $render->($trace, $id, $root, 'POST', 3, $at,
                    $at + $d,
                    [ [ 'http.request.method', 'POST' ],
                      [ 'url.full', "http://$peer.svc:8080/internal/"
                                    . hex_id(6) ],
                      [ 'server.address', "$peer.svc" ],
                      [ 'http.response.status_code', 200 ] ]);
        }

        $at += $d;
    }

    return @spans;
}

# a span in OTLP/JSON
sub json_span {
    my ($trace, $id, $parent, $name, $kind, $s, $e, $attrs, $err) = @_;
    return '{"traceId":"' . $trace . '","spanId":"' . $id . '"'
        . ($parent ? ',"parentSpanId":"' . $parent . '"' : '')
        . ',"name":' . js($name) . ',"kind":' . $kind
        . sprintf(',"startTimeUnixNano":"%.0f","endTimeUnixNano":"%.0f"',
                  $s, $e)
        . ',"attributes":[' . join(',', map { kv(@$_) } @$attrs) . ']'
        . ',"status":' . ($err ? '{"code":2,"message":' . js($err) . '}'
                               : '{}')
        . '}';
}

my %SDK = (java => '1.34.1', go => '1.24.0', python => '1.22.0',
           node => '1.21.0');
my %SCOPE = (java => 'io.opentelemetry.spring-webmvc-6.0',
             go => 'go.opentelemetry.io/contrib/instrumentation/'
                   . 'net/http/otelhttp',
             python => 'opentelemetry.instrumentation.flask',
             node => '@opentelemetry/instrumentation-http');

sub otlp_export {
    my ($h, $p, $t, $ntraces) = @_;
    my @spans = map { trace_spans($h, $p, $t, \&json_span) } 1 .. $ntraces;

    return '{"resourceSpans":[{"resource":{"attributes":['
        . join(',', kv('service.name', $p->{service}),
               kv('service.version', $p->{version}),
               kv('deployment.environment', $h->{env}),
               kv('host.name', $h->{name}),
               kv('k8s.pod.name', $p->{name}),
               kv('k8s.namespace.name', $p->{ns}),
               kv('k8s.deployment.name', $p->{service}),
               kv('k8s.cluster.name', $CLUSTER),
               kv('container.id', $p->{cid}),
               kv('process.pid', $p->{pid}),
               kv('telemetry.sdk.name', 'opentelemetry'),
               kv('telemetry.sdk.language', $p->{lang}),
               kv('telemetry.sdk.version', $SDK{ $p->{lang} }),
               kv('cloud.provider', 'aws'),
               kv('cloud.availability_zone', $h->{az}))
        . ']},"scopeSpans":[{"scope":{"name":"' . $SCOPE{ $p->{lang} }
        . '","version":"2.1.0"},"spans":[' . join(',', @spans)
        . ']}]}]}';
}


# ---------------------------------------------------------------- protobuf

# The wire format (protobuf encoding): fields are concatenated in number
# order, as protoc's encoders write them; zero scalars are left out
# (proto3).  Integers are Perl's 64-bit IVs: a negative one is its two's
# complement, as protobuf's int64 has it.

sub pb_varint {
    my $v = shift;
    my $s = '';
    while ($v > 0x7f || $v < 0) {
        $s .= chr(($v & 0x7f) | 0x80);
        $v >>= 7;
    }
    return $s . chr $v;
}

sub pb_key { pb_varint($_[0] << 3 | $_[1]) }
sub pb_int { $_[1] ? pb_key($_[0], 0) . pb_varint($_[1]) : '' }
sub pb_len { pb_key($_[0], 2) . pb_varint(length $_[1]) . $_[1] }
sub pb_str { length $_[1] ? pb_len(@_) : '' }
sub pb_dbl { $_[1] ? pb_key($_[0], 1) . pack('d<', $_[1]) : '' }
sub pb_f64 { $_[1] ? pb_key($_[0], 1) . pack('Q<', $_[1]) : '' }
sub pb_msgs { my $f = shift; join '', map { pb_len($f, $_) } @_ }

# OTLP KeyValue: a string, or an int64 for what looks like one
sub pb_kv {
    my ($k, $v) = @_;
    my $any = $v =~ /^-?\d+$/ && length $v < 16 ? pb_key(3, 0) . pb_varint($v)
            : pb_len(1, $v);
    return pb_str(1, $k) . pb_len(2, $any);
}

sub pb_attrs { my $f = shift; pb_msgs($f, map { pb_kv(@$_) } @_) }

# the resource of a pod's OTLP exports
sub pb_resource {
    my ($h, $p) = @_;
    return pb_attrs(1, [ 'service.name', $p->{service} ],
                    [ 'service.version', $p->{version} ],
                    [ 'deployment.environment', $h->{env} ],
                    [ 'host.name', $h->{name} ],
                    [ 'k8s.pod.name', $p->{name} ],
                    [ 'k8s.namespace.name', $p->{ns} ],
                    [ 'k8s.deployment.name', $p->{service} ],
                    [ 'k8s.cluster.name', $CLUSTER ],
                    [ 'container.id', $p->{cid} ],
                    [ 'process.pid', $p->{pid} ],
                    [ 'telemetry.sdk.name', 'opentelemetry' ],
                    [ 'telemetry.sdk.language', $p->{lang} ],
                    [ 'telemetry.sdk.version', $SDK{ $p->{lang} } ],
                    [ 'cloud.provider', 'aws' ],
                    [ 'cloud.availability_zone', $h->{az} ]);
}

# ResourceX { resource = 1; repeated ScopeX = 2 } of one scope
sub pb_export {
    my ($h, $p, $scope, $items) = @_;
    return pb_len(1, pb_len(1, pb_resource($h, $p))
                     . pb_len(2, pb_len(1, pb_str(1, $scope)
                                          . pb_str(2, '2.1.0'))
                                 . pb_msgs(2, @$items))
                     . pb_str(3, 'https://opentelemetry.io/schemas/1.24.0'));
}

# Datadog MetricPayload of a host's flush (the v2 series above, as protobuf)
sub pb_series {
    my ($h, $t, $list) = @_;
    my @series;

    for my $s (@$list) {
        my ($m, $type, $unit, $v, $tags) = @$s;
        push @series, pb_len(1, pb_str(1, 'host') . pb_str(2, $h->{name}))
            . pb_str(2, $m)
            . join('', map { pb_str(3, $_) } @{ $h->{tags} }, @$tags)
            . pb_len(4, pb_dbl(1, $v) . pb_int(2, $t))
            . pb_int(5, $type) . pb_str(6, $unit)
            . pb_str(7, $m =~ /^system\./ ? 'System' : '')
            . pb_int(8, $type != 3 ? 15 : 0);
    }

    return pb_msgs(1, @series);
}

# a pod's OTLP metrics: its container metrics as gauges and sums, and the
# HTTP server duration histogram per route and status
my @BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5,
              5, 7.5, 10);

sub pb_otlp_metrics {
    my ($h, $p, $t) = @_;
    my $ns = $t * 1e9;
    my $start = ($EPOCH - 3600) * 1e9;
    my @metrics;

    for my $def (@CONTAINER) {
        my ($m, $type, $unit, $base, $spread, $int) = @$def;
        my $v = $spread ? walk("$p->{name} otlp $m", $base, $spread) : $base;
        my $dp = pb_f64(2, $type == 3 ? 0 : $start) . pb_f64(3, $ns)
            . ($int ? pb_key(6, 1) . pack('q<', int $v) : pb_dbl(4, $v))
            . pb_attrs(7, [ 'k8s.container.name', 'app' ]);
        (my $name = $m) =~ s/^(?:container|kubernetes)\./k8s.container./;
        push @metrics, pb_str(1, $name) . pb_str(3, $unit eq '' ? '1' : $unit)
            . ($type == 3 ? pb_len(5, pb_len(1, $dp))
                          : pb_len(7, pb_len(1, $dp) . pb_int(2, 2)
                                      . pb_int(3, 1)));
    }

    my @points;

    for my $ep (@{ $p->{svc}[4] }) {
        my ($method, $route) = $ep =~ /^(\S+) (\S+)$/ ? ($1, $2)
                                                      : ('POST', $ep);
        for my $status (200, 500) {
            my $count = int walk("$p->{name} $ep $status n",
                                 $status == 200 ? $p->{rate} * 60 : 3, 10);
            my @buckets = (0) x (@BOUNDS + 1);
            $buckets[ int(rand() * rand() * @buckets) ]++ for 1 .. $count;
            push @points, pb_f64(2, $start) . pb_f64(3, $ns)
                . pb_f64(4, $count)
                . pb_dbl(5, $count * walk("$p->{name} $ep lat", 0.04, 0.01))
                . pb_len(6, pack('Q<*', @buckets))
                . pb_len(7, pack('d<*', @BOUNDS))
                . pb_attrs(9, [ 'http.request.method', $method ],
                           [ 'http.route', $route ],
                           [ 'http.response.status_code', $status ],
                           [ 'url.scheme', 'http' ],
                           [ 'network.protocol.version', '1.1' ]);
        }
    }

    push @metrics, pb_str(1, 'http.server.request.duration')
        . pb_str(2, 'Duration of HTTP server requests.') . pb_str(3, 's')
        . pb_len(9, pb_msgs(1, @points) . pb_int(2, 2));

    return pb_export($h, $p, 'io.opentelemetry.sdk.metrics', \@metrics);
}

my %SEVERITY = (info => 9, warn => 13, error => 17);

# a pod's OTLP logs: the same lines as the Datadog logs
sub pb_otlp_logs {
    my ($h, $p, $t, $n) = @_;
    my @records;

    for (1 .. $n) {
        my $ms = $t * 1000 - int rand 5000;
        my ($msg, $lvl) = log_line($h, $p, $ms);
        push @records, pb_f64(1, $ms * 1e6)
            . pb_int(2, $SEVERITY{$lvl}) . pb_str(3, uc $lvl)
            . pb_len(5, pb_len(1, $msg))
            . pb_attrs(6, [ 'log.iostream', 'stdout' ],
                       [ 'log.file.path', "/var/log/pods/$p->{ns}_$p->{name}"
                                          . '/app/0.log' ])
            . pb_key(8, 5) . pack('V', 1)
            . pb_len(9, pack('H*', hex_id(32)))
            . pb_len(10, pack('H*', hex_id(16)))
            . pb_f64(11, ($ms + int rand 200) * 1e6);
    }

    return pb_export($h, $p, 'io.opentelemetry.logs', \@records);
}

# a span in protobuf
sub pb_span {
    my ($trace, $id, $parent, $name, $kind, $s, $e, $attrs, $err) = @_;
    return pb_len(1, pack 'H*', $trace) . pb_len(2, pack 'H*', $id)
        . pb_str(4, pack 'H*', $parent) . pb_str(5, $name) . pb_int(6, $kind)
        . pb_f64(7, $s) . pb_f64(8, $e) . pb_attrs(9, @$attrs)
        . pb_len(15, $err ? pb_str(2, $err) . pb_int(3, 2) : '')
        . pb_key(16, 5) . pack('V', 0x101);
}

# a pod's OTLP spans
sub pb_otlp_traces {
    my ($h, $p, $t, $ntraces) = @_;
    my @spans = map { trace_spans($h, $p, $t, \&pb_span) } 1 .. $ntraces;

    return pb_export($h, $p, $SCOPE{ $p->{lang} }, \@spans);
}

# Prometheus WriteRequest of a host's scrape: the series above with
# Prometheus names and sorted labels, one sample each (milliseconds)
sub pb_prom_write {
    my ($h, $t, $list) = @_;
    my @ts;

    for my $s (@$list) {
        my ($m, $type, $unit, $v, $tags) = @$s;
        (my $name = $m) =~ tr/./_/;
        $name .= '_total' if $type != 3;
        my %l = (__name__ => $name, instance => "$h->{name}:9100",
                 job => 'node', cluster => $CLUSTER);
        for (@{ $h->{tags} }, @$tags) {
            my ($k, $val) = /^([^:]+):(.*)$/ or next;
            $k =~ tr/a-zA-Z0-9_/_/c;
            $l{$k} = $val;
        }
        push @ts, pb_msgs(1, map { pb_str(1, $_) . pb_str(2, $l{$_}) }
                             sort keys %l)
            . pb_len(2, pb_dbl(1, $v) . pb_int(2, $t * 1000 + int rand 900));
    }

    return pb_msgs(1, @ts);
}


# ---------------------------------------------------------------- output

my %TYPE = (
    series_v2 => [ '/api/v2/series', 'application/json' ],
    series_v1 => [ '/api/v1/series', 'application/json' ],
    check_run => [ '/api/v1/check_run', 'application/json' ],
    logs      => [ '/api/v2/logs', 'application/json' ],
    otlp      => [ '/v1/traces', 'application/json' ],
    pb_series       => [ '/api/v2/series', 'application/x-protobuf' ],
    pb_otlp_metrics => [ '/v1/metrics', 'application/x-protobuf' ],
    pb_otlp_logs    => [ '/v1/logs', 'application/x-protobuf' ],
    pb_otlp_traces  => [ '/v1/traces', 'application/x-protobuf' ],
    pb_prom_write   => [ '/api/v1/write', 'application/x-protobuf' ],
);

my @pending_zstd;   # [index into @out, body] compressed in one zstd run
my @pending_snappy; # the same for snappy, by rdxbench

sub request {
    my ($out, $kind, $body, $enc) = @_;
    my $wire = $enc eq 'deflate' ? compress($body, 6)
             : $enc eq 'gzip'    ? memGzip($body)
             : $body;

    push @$out, [ $kind, $TYPE{$kind}[0], $enc, $wire, length $body ];
    push @pending_zstd, [ $out->[-1], $body ] if $enc eq 'zstd';
    push @pending_snappy, [ $out->[-1], $body ] if $enc eq 'snappy';
}

# the pending bodies of one coding, compressed by one run of a command
# that turns each FILE into FILE.SUFFIX
sub finish_coding {
    my ($pending, $suffix, @cmd) = @_;
    return unless @$pending;

    my $dir = tempdir(CLEANUP => 1);
    my @files;

    for my $i (0 .. $#$pending) {
        my $f = "$dir/$i";
        open my $fh, '>:raw', $f or die "$f: $!";
        print $fh $pending->[$i][1];
        close $fh;
        push @files, $f;
    }

    system(@cmd, @files) == 0 or die "@cmd failed\n";

    for my $i (0 .. $#$pending) {
        open my $fh, '<:raw', "$dir/$i.$suffix" or die "$dir/$i.$suffix: $!";
        local $/;
        $pending->[$i][0][3] = <$fh>;
        close $fh;
    }

    @$pending = ();
}

# the Agent's zstd is level 1; one zstd process for all of them
sub finish_zstd { finish_coding(\@pending_zstd, 'zst', qw(zstd -q -1 --rm)) }

# remote write's snappy block format, by libsnappy in rdxbench
sub finish_snappy {
    finish_coding(\@pending_snappy, 'sz', $opt{snappy}, 'snappy');
}

sub write_requests {
    my ($path, $out) = @_;
    my ($n, $wire, $raw) = (0, 0, 0);

    open my $fh, '>:raw', $path or die "$path: $!";

    for my $r (@$out) {
        my ($kind, $uri, $enc, $body, $decoded) = @$r;
        printf $fh "%s %s %s %d %d\n", $kind, $uri, $enc, length $body,
            $decoded;
        print $fh $body;
        $n++;
        $wire += length $body;
        $raw += $decoded;
    }

    close $fh or die "$path: $!";

    printf "  %-10s %6d requests, %7.1f MiB decoded, %6.1f MiB on the wire\n",
        $path =~ m{([^/]+)$}, $n, $raw / 1048576, $wire / 1048576;
}


# the fleet's traffic, second by second
sub fleet_traffic {
    my @out;
    my $seconds = int($opt{minutes} * 60);

    for my $s (0 .. $seconds - 1) {
        my $t = $EPOCH + $s;

        for my $h (@fleet) {
            if (($s + $h->{offset}) % 15 == 0) {
                my $list = host_series($h, $t - $t % 15);

                if ($h->{v1}) {
                    request(\@out, 'series_v1', '{"series":['
                        . join(',', @{ series_v1($h, $t, $list) }) . ']}',
                        'deflate');
                } else {
                    request(\@out, 'series_v2', '{"series":['
                        . join(',', @{ series_v2($h, $t, $list) }) . ']}',
                        $h->{zstd} ? 'zstd' : 'deflate');
                }

                request(\@out, 'check_run',
                        '[' . join(',', @{ check_runs($h, $t) }) . ']',
                        'deflate');
            }

            if (($s + $h->{offset}) % 5 == 0) {
                my $rate = 0;
                $rate += $_->{rate} for @{ $h->{pods} };
                my $n = around($rate * 5 / 8);
                request(\@out, 'logs',
                        '[' . join(',', @{ log_items($h, $t, $n) }) . ']',
                        'gzip') if $n;

                for my $p (@{ $h->{pods} }) {
                    my $ntraces = around($p->{rate} / 10) || 1;
                    request(\@out, 'otlp', otlp_export($h, $p, $t, $ntraces),
                            'identity');
                }
            }
        }
    }

    return \@out;
}


# the protobuf senders of the fleet: per host a MetricPayload and a remote
# write every 15 s, per pod OTLP metrics every 15 s, logs and traces every
# 5 s
sub protobuf_traffic {
    my @out;
    my $seconds = int($opt{minutes} * 60);
    my $snappy = $opt{snappy} ? 'snappy' : 'identity';

    for my $s (0 .. $seconds - 1) {
        my $t = $EPOCH + $s;

        for my $h (@fleet) {
            if (($s + $h->{offset}) % 15 == 0) {
                my $list = host_series($h, $t - $t % 15);

                request(\@out, 'pb_series', pb_series($h, $t, $list),
                        'zstd');
                request(\@out, 'pb_prom_write', pb_prom_write($h, $t, $list),
                        $snappy);
                request(\@out, 'pb_otlp_metrics', pb_otlp_metrics($h, $_, $t),
                        'gzip') for @{ $h->{pods} };
            }

            next if ($s + $h->{offset}) % 5;

            for my $p (@{ $h->{pods} }) {
                my $n = around($p->{rate} * 5 / 8 / @{ $h->{pods} }) || 1;
                request(\@out, 'pb_otlp_logs', pb_otlp_logs($h, $p, $t, $n),
                        'gzip');
                request(\@out, 'pb_otlp_traces',
                        pb_otlp_traces($h, $p, $t, around($p->{rate} / 10)
                                                   || 1),
                        'gzip');
            }
        }
    }

    return \@out;
}


# identity bodies of about $size bytes, the kinds in turn
sub sized_bodies {
    my ($size, $count) = @_;
    my @out;
    my @kinds = qw(series_v2 logs otlp series_v1 check_run);

    for my $i (0 .. $count - 1) {
        my $kind = $kinds[$i % @kinds];
        my $h = $fleet[$i % @fleet];
        my $t = $EPOCH + $i * 5;
        my @items;
        my $len = 16;
        my ($open, $close) = $kind =~ /^series/ ? ('{"series":[', ']}')
                           : $kind eq 'otlp'   ? ('', '')
                           : ('[', ']');

        if ($kind eq 'otlp') {
            # whole traces until the export is big enough
            my $p = $h->{pods}[0];
            my $n = 1;
            my $body;
            while (1) {
                my $next = otlp_export($h, $p, $t, $n);
                last if length($next) > $size && defined $body;
                $body = $next;
                last if length($next) > $size;
                $n++;
            }
            request(\@out, $kind, $body, 'identity');
            next;
        }

        my $full = 0;

        while (!$full) {
            my $more = $kind eq 'series_v2'
                ? series_v2($h, $t, host_series($h, $t))
                : $kind eq 'series_v1'
                ? series_v1($h, $t, host_series($h, $t))
                : $kind eq 'logs' ? log_items($h, $t, 20)
                : check_runs($h, $t);

            for my $item (@$more) {
                if ($len + length($item) + 1 > $size && @items) {
                    $full = 1;
                    last;
                }

                push @items, $item;
                $len += length($item) + 1;
            }
        }

        request(\@out, $kind, $open . join(',', @items) . $close,
                'identity');
    }

    return \@out;
}


make_path($opt{out});

printf "corpus: seed %d, %d hosts, %d pods, %.1f simulated minutes\n",
    $opt{seed}, scalar @fleet, scalar(map { @{ $_->{pods} } } @fleet),
    $opt{minutes};

my $mix = fleet_traffic();
finish_zstd();
write_requests("$opt{out}/mix.req", $mix);

# enough distinct bodies that, per kind (one stream each), a cycle through
# them is at least the window of zstd -3 (2 MiB): the hot path never
# compresses an exact repeat
write_requests("$opt{out}/b4k.req", sized_bodies(4096, 2560));
write_requests("$opt{out}/b64k.req", sized_bodies(65536, 320));

# after the JSON corpus, so that it stays what it was
my $pb = protobuf_traffic();
finish_zstd();
finish_snappy();
write_requests("$opt{out}/pb.req", $pb);
