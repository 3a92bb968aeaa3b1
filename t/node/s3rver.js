'use strict';

// Starts s3rver (SigV4 signatures verified) with one bucket and one access
// key, behind the recording proxy (t/node/rdx-proxy.js):
//
//   node t/node/s3rver.js --port P --control C --dir DIR --bucket B
//        --access-key AK --secret-key SK --log FILE --ready FILE
//        [--role-arn ARN --web-identity-token-file F --lifetime S]
//
// With --role-arn, STS AssumeRoleWithWebIdentity answers on the same port
// (t/node/identity.js) and hands out temporary keys that s3rver takes.
//
// s3rver 5 lacks ListMultipartUploads and AbortMultipartUpload, which the
// module uses to clean up uploads a crash left behind: they are added
// here on top of s3rver's own store and its signature check. Objects end
// up in DIR/B/<key>._S3rver_object, pending uploads in
// DIR/B/._S3rver_uploads/<id>/.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

// s3rver makes its continuation tokens with single DES, which OpenSSL 3
// (Node 17 and later) keeps in its legacy provider only; three-key 3DES
// with the key repeated three times is the same cipher.
for (const name of ['createCipheriv', 'createDecipheriv']) {
  const orig = crypto[name];
  crypto[name] = (alg, key, ...rest) => (alg === 'des'
    ? orig('des-ede3-cbc', Buffer.concat([key, key, key]), ...rest)
    : orig(alg, key, ...rest));
}

const S3rver = require('@20minutes/s3rver');
const AWSAccount = require('@20minutes/s3rver/lib/models/account');
const S3Error = require('@20minutes/s3rver/lib/models/error');
const authentication = require('@20minutes/s3rver/lib/middleware/authentication');

const { startProxy, parseArgs, writeReady } = require('./rdx-proxy');
const identity = require('./identity');

const args = parseArgs(process.argv.slice(2));

AWSAccount.DUMMY_ACCOUNT.createKeyPair(args['access-key'], args['secret-key']);

const uploadsDir = (bucket) => path.join(args.dir, bucket, '._S3rver_uploads');

function multipartExtension() {
  const auth = authentication();

  return async function multipart(ctx, next) {
    const m = ctx.path.match(/^\/([^/]+)(?:\/(.+))?$/);
    const list = m && !m[2] && ctx.method === 'GET' && 'uploads' in ctx.query;
    const abort = m && m[2] && ctx.method === 'DELETE' && 'uploadId' in ctx.query;

    if (!list && !abort) {
      return next();
    }

    ctx.params = { bucket: m[1] };
    if (m[2]) ctx.params.key = decodeURIComponent(m[2]);

    await auth(ctx, async () => {
      const dir = uploadsDir(m[1]);
      const ids = fs.existsSync(dir) ? fs.readdirSync(dir) : [];

      if (list) {
        const prefix = ctx.query.prefix || '';
        const uploads = [];
        for (const id of ids) {
          const keyFile = path.join(dir, id, 'key');
          if (!fs.existsSync(keyFile)) continue;
          const key = fs.readFileSync(keyFile, 'utf8');
          if (key.startsWith(prefix)) {
            uploads.push({
              Key: key,
              UploadId: id,
              Initiated: fs.statSync(keyFile).mtime.toISOString(),
            });
          }
        }
        ctx.body = {
          ListMultipartUploadsResult: {
            '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
            Bucket: m[1],
            Prefix: prefix,
            IsTruncated: false,
            Upload: uploads,
          },
        };
        return;
      }

      const id = ctx.query.uploadId;
      const keyFile = path.join(dir, id, 'key');
      if (!/^[0-9a-f]+$/.test(id) || !fs.existsSync(keyFile)
          || fs.readFileSync(keyFile, 'utf8') !== ctx.params.key) {
        throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', {
          UploadId: id,
        });
      }
      fs.rmSync(path.join(dir, id), { recursive: true, force: true });
      ctx.status = 204;
    });
  };
}

async function main() {
  fs.mkdirSync(args.dir, { recursive: true });

  const s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: args.dir,
    configureBuckets: [{ name: args.bucket }],
  });

  // before the router, after s3rver's XML rendering and vhost handling
  s3.middleware.splice(s3.middleware.length - 1, 0, multipartExtension());

  const addr = await s3.run();

  await startProxy({
    port: Number(args.port),
    control: Number(args.control),
    target: { host: '127.0.0.1', port: addr.port },
    log: args.log,
    intercept: args['role-arn'] ? identity.sts({
      dir: args.dir,
      account: AWSAccount.DUMMY_ACCOUNT,
      roleArn: args['role-arn'],
      tokenFile: args['web-identity-token-file'],
      lifetime: Number(args.lifetime || 3600),
    }) : null,
  });

  writeReady(args.ready, { port: Number(args.port), backend: addr.port });
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
