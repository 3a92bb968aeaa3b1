#!/usr/bin/perl
# Kubernetes manifests and Compose files: yamllint (packaging/yamllint.yml),
# then the fields that make the deployment highly available and lossless,
# read from the parsed YAML and checked against the files they must agree
# with (the image's nginx.conf, templates and entrypoint, conf/lb.conf).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use RdxTest;
use RdxDeploy qw(slurp);

my $t = RdxTest->new;
my $repo = RdxDeploy::repo;
my $k8s = "$repo/packaging/kubernetes";
my $compose = "$repo/packaging/compose";

# "90s", "1m30s", 90 -> 90
sub seconds {
    my ($v) = @_;
    return $v if $v =~ /^\d+$/;
    my $s = 0;
    while ($v =~ /(\d+)(h|m|s)/g) {
        $s += $1 * { h => 3600, m => 60, s => 1 }->{$2};
    }
    return $s;
}

# "3g", "4Gi", "512m" -> bytes
sub bytes {
    my ($v) = @_;
    my ($n, $u) = $v =~ /^(\d+)\s*([kmgt]?)i?b?$/i or return;
    return $n * 1024 ** index('kmgt', lc $u) * 1024 if $u;
    return $n;
}

my $shutdown = seconds(slurp("$repo/packaging/docker/nginx.conf")
                       =~ /^worker_shutdown_timeout\s+(\S+);/m ? $1 : 0);
ok($shutdown > 0, "the image's worker_shutdown_timeout: ${shutdown}s");

my ($uid) = slurp("$repo/Dockerfile") =~ /^USER (\d+)/m;
my $tpl = slurp("$repo/packaging/docker/templates/reductrai.conf.template");
my $env_known = join '', map { slurp($_) }
    glob("$repo/packaging/docker/entrypoint/*"),
    glob("$repo/packaging/docker/templates/*.template"),
    glob("$repo/packaging/docker/templates/*/*.template"),
    "$repo/Dockerfile";

# VAR_FILE works for the secrets 14-reductrai-secrets.envsh lists
my ($file_vars) = slurp("$repo/packaging/docker/entrypoint/"
                        . "14-reductrai-secrets.envsh")
                  =~ /^for reductrai_secret in ([^\n]*(?:\\\n[^\n]*)*)$/m;
$env_known .= join ' ', '', map { "${_}_FILE" } split /[\s\\]+/, $file_vars // '';

sub known {
    my ($name, $what) = @_;
    ok($env_known =~ /\b\Q$name\E\b/, "$what: \$$name is read by the image");
}

like($tpl, qr/location = \/livez \{[^}]*reductrai_health\s+live;/,
     'the image serves /livez with "reductrai_health live"');
like($tpl, qr/location = \/health \{[^}]*reductrai_health\s+upstream=/,
     'the image serves /health (readiness)');


# --- yamllint -----------------------------------------------------------------

my @yaml = (glob("$k8s/*.yaml"), glob("$k8s/*/*.yaml"), glob("$compose/*.yml"));
cmp_ok(scalar @yaml, '>=', 9, 'manifests and compose files found');

for my $f (@yaml) {
    my ($rc, $out) = RdxDeploy::run('yamllint', '-f', 'parsable', '-c',
                                    "$repo/packaging/yamllint.yml", $f);
    is($rc, 0, "yamllint " . ($f =~ s{^\Q$repo\E/}{}r)) or diag($out);
    is($out, '', 'no warning') or diag($out);
}


# --- Kubernetes -------------------------------------------------------------------

my %obj;
for my $f (glob("$k8s/*.yaml"), glob("$k8s/*/*.yaml")) {
    my $rel = $f =~ s{^\Q$k8s\E/}{}r;
    for my $d (RdxDeploy::yaml_docs($f)) {
        next unless ref $d eq 'HASH';
        ok($d->{apiVersion} && $d->{kind} && $d->{metadata}{name},
           "$rel: $d->{kind}/$d->{metadata}{name}");
        my $set = $rel =~ m{^statefulset/} ? 'sts' : 'deploy';
        push @{ $obj{$set}{ $d->{kind} } }, $d;
    }
}

sub one {
    my ($set, $kind) = @_;
    my @o = @{ $obj{$set}{$kind} // [] };
    is(scalar @o, 1, "$set: one $kind") or return {};
    return $o[0];
}

sub pod_checks {
    my ($w, $what) = @_;
    my $pod = $w->{spec}{template}{spec} // {};
    my ($c) = grep { $_->{name} eq 'proxy' } @{ $pod->{containers} // [] };
    ok($c, "$what: container proxy") or return;

    is_deeply($w->{spec}{selector}{matchLabels},
              { app => 'reductrai-proxy' }, "$what: selector");
    is($w->{spec}{template}{metadata}{labels}{app}, 'reductrai-proxy',
       "$what: pod label matches the selector");

    my %port = map { $_->{name} => $_->{containerPort} } @{ $c->{ports} };
    is($port{http}, 8080, "$what: port http 8080");
    is($port{metrics}, 9145, "$what: port metrics 9145");

    my $live = $c->{livenessProbe}{httpGet} // {};
    is($live->{path}, '/livez', "$what: liveness on /livez (live)");
    is($port{ $live->{port} // '' } // $live->{port}, 8080,
       "$what: liveness on 8080");
    my $ready = $c->{readinessProbe}{httpGet} // {};
    is($ready->{path}, '/health', "$what: readiness on /health");
    is($port{ $ready->{port} // '' } // $ready->{port}, 8080,
       "$what: readiness on 8080");
    is($c->{startupProbe}{httpGet}{path}, '/livez',
       "$what: startup probe (spool recovery) on /livez");
    cmp_ok($c->{livenessProbe}{failureThreshold} * $c->{livenessProbe}{periodSeconds},
           '>=', 30, "$what: liveness tolerates 30 s");

    my $cmd = join ' ', @{ $c->{lifecycle}{preStop}{exec}{command} // [] };
    like($cmd, qr/kill -QUIT|nginx -s quit/, "$what: preStop quits nginx gracefully");
    like($cmd, qr/while kill -0 .*sleep/, "$what: preStop waits for nginx to exit");
    my ($sleep) = $cmd =~ /^\S+ -c sleep (\d+);/;
    ok(defined $sleep && $sleep >= 5,
       "$what: preStop first waits for endpoints to drop ($sleep s)");
    my $grace = $pod->{terminationGracePeriodSeconds} // 30;
    cmp_ok($grace, '>=', ($sleep // 0) + $shutdown + 10,
           "$what: terminationGracePeriodSeconds $grace >= preStop sleep + "
           . "worker_shutdown_timeout + 10");

    my $aff = $pod->{affinity}{podAntiAffinity}
              {preferredDuringSchedulingIgnoredDuringExecution}[0]
              {podAffinityTerm} // {};
    is($aff->{topologyKey}, 'kubernetes.io/hostname',
       "$what: anti-affinity across nodes");
    is_deeply($aff->{labelSelector}{matchExpressions},
              [ { key => 'app', operator => 'In',
                  values => [ 'reductrai-proxy' ] } ],
              "$what: anti-affinity to its own pods");

    for my $k (qw(requests limits)) {
        ok($c->{resources}{$k}{cpu} && $c->{resources}{$k}{memory},
           "$what: resources.$k cpu and memory");
    }

    # security: the image's user, nothing writable but the mounts
    is($pod->{securityContext}{runAsUser}, $uid, "$what: runAsUser $uid "
       . '(the Dockerfile\'s USER)');
    ok($pod->{securityContext}{runAsNonRoot}, "$what: runAsNonRoot");
    ok($c->{securityContext}{readOnlyRootFilesystem},
       "$what: read-only root filesystem");
    my %mount = map { $_->{mountPath} => $_->{name} } @{ $c->{volumeMounts} };
    for my $p ('/etc/nginx/conf.d', '/var/cache/nginx', '/tmp',
               '/var/spool/nginx/reductrai') {
        ok($mount{$p}, "$what: $p is writable ($mount{$p})");
    }

    # environment: names the image knows; secrets only as files
    my %env = map { $_->{name} => $_ } @{ $c->{env} };
    for my $n (sort keys %env) {
        known($n, $what);
        ok(!($n =~ /(KEY|SECRET|TOKEN|SAS)$/ && exists $env{$n}{value}),
           "$what: \$$n is no secret in plain text");
    }
    my ($secret_vol) = grep { $_->{secret} } @{ $pod->{volumes} };
    ok($secret_vol, "$what: a Secret volume")
        and is($secret_vol->{secret}{secretName}, 'reductrai-secrets',
               "$what: secret reductrai-secrets");
    my ($smount) = grep { $mount{$_} eq ($secret_vol->{name} // '') }
                   keys %mount;
    for my $n (grep { /_FILE$/ } sort keys %env) {
        like($env{$n}{value}, qr{^\Q$smount\E/[\w.-]+$},
             "$what: $n is a file of the Secret volume");
    }
    ok($env{DATADOG_API_KEY_FILE}, "$what: the Datadog key from the Secret");
    ok(!grep({ /^S3_(ACCESS|SECRET)_KEY/ } keys %env),
       "$what: no static storage key");
    my %sa = map { $_->{metadata}{name} => $_ }
             @{ $obj{deploy}{ServiceAccount} // [] };
    ok($sa{ $pod->{serviceAccountName} // '' },
       "$what: runs as a ServiceAccount of serviceaccount.yaml");
    is($env{STORAGE_COLD_TYPE}{value}, 's3', "$what: shared S3 storage");
    is($env{REDUCTRAI_WORKER_PROCESSES}{valueFrom}{resourceFieldRef}{resource},
       'limits.cpu', "$what: workers = the CPU limit");

    return ($c, $pod, \%mount);
}

# a ServiceAccount per cloud, each with its workload identity annotation
{
    my %sa = map { $_->{metadata}{name} => $_ }
             @{ $obj{deploy}{ServiceAccount} // [] };
    like($sa{'reductrai-eks'}{metadata}{annotations}{'eks.amazonaws.com/role-arn'}
         // '', qr/^arn:aws:iam::\d{12}:role\//, 'EKS: IRSA role annotation');
    like($sa{'reductrai-gke'}{metadata}{annotations}{'iam.gke.io/gcp-service-account'}
         // '', qr/\.iam\.gserviceaccount\.com$/,
         'GKE: Workload Identity annotation');
    like($sa{'reductrai-aks'}{metadata}{annotations}{'azure.workload.identity/client-id'}
         // '', qr/^[0-9a-f-]{36}$/, 'AKS: workload identity client id');
}

# the Deployment
{
    my $d = one(deploy => 'Deployment');
    is($d->{spec}{replicas}, 3, 'Deployment: 3 replicas');
    is($d->{spec}{strategy}{type}, 'RollingUpdate', 'RollingUpdate');
    is($d->{spec}{strategy}{rollingUpdate}{maxUnavailable}, 0,
       'maxUnavailable 0');
    cmp_ok($d->{spec}{strategy}{rollingUpdate}{maxSurge}, '>=', 1,
           'maxSurge >= 1');

    my ($c, $pod, $mount) = pod_checks($d, 'Deployment');
    my ($spool) = grep { $_->{name} eq $mount->{'/var/spool/nginx/reductrai'} }
                  @{ $pod->{volumes} };
    ok($spool->{emptyDir}, 'Deployment: the spool is an emptyDir');
    my %env = map { $_->{name} => $_->{value} } @{ $c->{env} };
    cmp_ok(bytes($env{REDUCTRAI_SPOOL_MAX_SIZE}), '<',
           bytes($spool->{emptyDir}{sizeLimit}),
           'spool max_size below the emptyDir sizeLimit (no eviction)');
    ok(slurp("$k8s/deployment.yaml") =~ /^#.*StatefulSet/m,
       'the Deployment documents the StatefulSet choice');
}

# the StatefulSet alternative
{
    my $s = one(sts => 'StatefulSet');
    is($s->{spec}{replicas}, 3, 'StatefulSet: 3 replicas');
    my ($c, $pod, $mount) = pod_checks($s, 'StatefulSet');
    my ($claim) = @{ $s->{spec}{volumeClaimTemplates} // [] };
    is($claim->{metadata}{name}, $mount->{'/var/spool/nginx/reductrai'},
       'StatefulSet: the spool is a claim per pod');
    ok(!grep({ $_->{name} eq $claim->{metadata}{name} } @{ $pod->{volumes} }),
       'StatefulSet: no other volume of that name');
    is($s->{spec}{persistentVolumeClaimRetentionPolicy}{whenScaled}, 'Retain',
       'StatefulSet: claims (and their segments) outlive scale-down');
    my ($h) = grep { $_->{metadata}{name} eq $s->{spec}{serviceName} }
              @{ $obj{sts}{Service} // [] };
    is($h && $h->{spec}{clusterIP}, 'None', 'StatefulSet: headless service');
    my $hpa = one(sts => 'HorizontalPodAutoscaler');
    is($hpa->{spec}{scaleTargetRef}{kind}, 'StatefulSet',
       'StatefulSet: its HPA scales it');
}

{
    my $svc = one(deploy => 'Service');
    is_deeply($svc->{spec}{selector}, { app => 'reductrai-proxy' },
              'Service selects the pods');
    my ($p) = grep { $_->{name} eq 'http' } @{ $svc->{spec}{ports} };
    is($p->{port}, 8080, 'Service: 8080');
    is($p->{targetPort}, 'http', 'Service: to the http port');

    my $hpa = one(deploy => 'HorizontalPodAutoscaler');
    is($hpa->{apiVersion}, 'autoscaling/v2', 'HPA: autoscaling/v2');
    is_deeply([ @{ $hpa->{spec}{scaleTargetRef} }{qw(kind name)} ],
              [ 'Deployment', 'reductrai-proxy' ], 'HPA scales the Deployment');
    cmp_ok($hpa->{spec}{minReplicas}, '>=', 3, 'HPA: never below 3');
    cmp_ok($hpa->{spec}{maxReplicas}, '>', $hpa->{spec}{minReplicas},
           'HPA: room to grow');
    my %m = map { $_->{resource}{name} => $_->{resource}{target}{averageUtilization} }
            @{ $hpa->{spec}{metrics} };
    ok($m{cpu} && $m{memory}, "HPA: cpu $m{cpu}%, memory $m{memory}%");
    is($hpa->{spec}{behavior}{scaleDown}{policies}[0]{value}, 1,
       'HPA: scales down one pod at a time (each drains its spool)');

    my $pdb = one(deploy => 'PodDisruptionBudget');
    is($pdb->{apiVersion}, 'policy/v1', 'PDB: policy/v1');
    is($pdb->{spec}{maxUnavailable}, 1, 'PDB: one pod at a time');
    is_deeply($pdb->{spec}{selector}{matchLabels},
              { app => 'reductrai-proxy' }, 'PDB selects the pods');
}


# --- Compose: three instances + the LB + MinIO ------------------------------

my ($ha) = RdxDeploy::yaml_docs("$compose/docker-compose-ha.yml");
{
    my $s = $ha->{services};
    my @proxies = sort grep { /^proxy-\d$/ } keys %$s;
    is_deeply(\@proxies, [ qw(proxy-1 proxy-2 proxy-3) ], 'HA: three instances');

    my (%ip, %spool);
    for my $p (@proxies) {
        my $e = $s->{$p}{environment};
        is($s->{$p}{image}, 'reductrai/proxy:latest', "$p: the image");
        is($s->{$p}{build}{context}, '../..', "$p: built from the repository");
        ok(-f "$compose/$s->{$p}{build}{context}/Dockerfile",
           "$p: the Dockerfile is there");
        is($e->{STORAGE_COLD_TYPE}, 's3', "$p: S3 storage");
        is($e->{S3_ENDPOINT}, 'http://minio:9000', "$p: MinIO");
        is($e->{S3_BUCKET}, 'reductrai-production', "$p: the shared bucket");
        known($_, $p) for sort keys %$e;
        cmp_ok(seconds($s->{$p}{stop_grace_period}), '>=', $shutdown + 10,
               "$p: stop_grace_period covers worker_shutdown_timeout");
        is($s->{$p}{restart}, 'unless-stopped', "$p: restarts");
        $ip{ $s->{$p}{networks}{reductrai}{ipv4_address} } = $p;
        my ($v) = grep { m{:/var/spool/nginx/reductrai$} }
                  @{ $s->{$p}{volumes} };
        ($spool{$p}) = ($v // '') =~ /^([^:]+)/;
        ok(exists $ha->{volumes}{ $spool{$p} // '' }, "$p: spool volume "
           . ($spool{$p} // '?'));
        is($s->{$p}{depends_on}{'minio-init'}{condition},
           'service_completed_successfully', "$p: starts once the bucket exists");
    }
    is(scalar(keys %{{ reverse %spool }}), 3, 'HA: a spool per instance');

    ok($s->{minio}, 'HA: MinIO');
    like(join(' ', @{ $s->{'minio-init'}{command} }),
         qr{mc mb --ignore-existing local/reductrai-production},
         'HA: the bucket is created');

    # the LB is conf/lb.conf, whose servers are the instances
    my $lb = $s->{lb};
    ok((grep { $_ eq '../../conf/lb.conf:/etc/nginx/conf.d/default.conf:ro' }
        @{ $lb->{volumes} }), 'HA: the LB runs conf/lb.conf');
    my @servers = slurp("$repo/conf/lb.conf")
                  =~ /^\s*server\s+(\d+\.\d+\.\d+\.\d+):8080\b/mg;
    is_deeply([ sort @servers ], [ sort keys %ip ],
              'HA: lb.conf\'s servers are the three instances');
    like($ha->{networks}{reductrai}{ipam}{config}[0]{subnet},
         qr{^10\.0\.1\.0/24$}, 'HA: on lb.conf\'s network');
    is(scalar(grep { $lb->{depends_on}{$_}{condition} eq 'service_healthy' }
              @proxies), 3, 'HA: the LB waits for healthy instances');
    ok((grep { /^"?8080:8080"?$/ } @{ $lb->{ports} }), 'HA: agents use :8080');
    ok(slurp("$repo/Dockerfile") =~ /^HEALTHCHECK (?:.*\\\n)*.*\/health/m,
       'HA: instances are health-checked by the image\'s HEALTHCHECK');
}


# --- Compose: Swarm ---------------------------------------------------------

my ($sw) = RdxDeploy::yaml_docs("$compose/docker-compose-swarm.yml");
{
    my $p = $sw->{services}{proxy} // {};
    my $d = $p->{deploy} // {};
    is($d->{replicas}, 3, 'Swarm: 3 replicas');
    is($d->{update_config}{parallelism}, 1, 'Swarm: update one at a time');
    is($d->{update_config}{delay}, '10s', 'Swarm: 10 s between updates');
    is($d->{update_config}{order}, 'start-first',
       'Swarm: the new task starts before the old one stops');
    is($d->{restart_policy}{condition}, 'any', 'Swarm: restart policy');
    ok($d->{resources}{limits}{cpus} && $d->{resources}{reservations}{memory},
       'Swarm: resources');

    my $hc = join ' ', @{ $p->{healthcheck}{test} // [] };
    like($hc, qr{^CMD curl .*http://localhost:8080/health$},
         'Swarm: healthcheck on /health');
    ok($p->{healthcheck}{start_period}, 'Swarm: healthcheck start_period');
    is($p->{stop_signal}, 'SIGQUIT', 'Swarm: graceful stop');
    cmp_ok(seconds($p->{stop_grace_period}), '>=', $shutdown + 10,
           'Swarm: stop_grace_period covers worker_shutdown_timeout');

    my $e = $p->{environment};
    is($e->{STORAGE_COLD_TYPE}, 's3', 'Swarm: S3 storage');
    is($e->{S3_ENDPOINT}, 'http://minio:9000', 'Swarm: shared MinIO');
    ok($sw->{services}{minio}, 'Swarm: MinIO service');
    known($_, 'Swarm') for sort keys %$e;
    my %secrets = map { $_ => 1 } @{ $p->{secrets} };
    for my $n (grep { /_FILE$/ } sort keys %$e) {
        my ($name) = $e->{$n} =~ m{^/run/secrets/(\w+)$};
        ok($name && $secrets{$name} && $sw->{secrets}{$name},
           "Swarm: $n is the secret " . ($name // '?'));
    }
    ok(!grep({ /(KEY|SECRET)$/ } keys %$e), 'Swarm: no secret in plain text');
    like($p->{hostname}, qr/\{\{\.Task\.Slot\}\}/,
         'Swarm: a stable instance name per slot');
}

$t->check_error_log;
done_testing;
