'use strict';

// A small Google Cloud Storage for the tests, behind the recording proxy:
// an OAuth2 token endpoint (POST /token) that verifies the RS256 JWT
// assertion with the service account's public key, the metadata server's
// token endpoint (GET /computeMetadata/v1/.../token, which, like GKE's and
// GCE's, answers only requests with "Metadata-Flavor: Google" and without
// X-Forwarded-For), and the XML API
// (objects, ranged GET, HEAD, ListObjectsV2, multipart uploads) that takes
// only the tokens it issued, until they expire.
//
//   node t/node/fake-gcs.js --port P --control C --dir DIR --bucket B
//        --pubkey PEM --email E --lifetime SECONDS --page N
//        --log FILE --ready FILE
//
// Objects are plain files DIR/B/<key>; pending uploads DIR/.uploads/<id>.
// The ready file reports nothing secret; tokens.json in DIR counts the
// tokens issued and the requests refused for a bad or expired token.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const { startProxy, parseArgs, writeReady, xmlError, freePort } = require('./rdx-proxy');

const args = parseArgs(process.argv.slice(2));
const pubkey = crypto.createPublicKey(fs.readFileSync(args.pubkey));
const lifetime = Number(args.lifetime || 3600);
const pageSize = Number(args.page || 1000);
const bucketDir = path.join(args.dir, args.bucket);
const uploadsDir = path.join(args.dir, '.uploads');
const tokens = new Map();
const stats = {
  issued: 0, refused_jwt: 0, unauthorized: 0, expired: 0, metadata: 0, metadata_refused: 0,
};

// renamed into place: a test reading it never sees it half written
function saveStats() {
  const file = path.join(args.dir, 'tokens.json');
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(stats));
  fs.renameSync(`${file}.tmp`, file);
}

function send(res, status, body, headers = {}) {
  const buf = Buffer.from(body || '');
  res.writeHead(status, { 'content-length': buf.length, ...headers });
  res.end(buf);
}

function xml(res, status, body) {
  send(res, status, `<?xml version="1.0" encoding="UTF-8"?>\n${body}`,
    { 'content-type': 'application/xml' });
}

function b64url(s) {
  return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

function esc(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function tokenEndpoint(req, res, body, audience) {
  const form = new URLSearchParams(body.toString());
  const refuse = (why) => {
    stats.refused_jwt++;
    saveStats();
    send(res, 400, JSON.stringify({ error: 'invalid_grant', error_description: why }),
      { 'content-type': 'application/json' });
  };

  if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
    return refuse('bad grant_type');
  }

  const parts = (form.get('assertion') || '').split('.');
  if (parts.length !== 3) return refuse('not a JWT');

  let head;
  let claims;
  try {
    head = JSON.parse(b64url(parts[0]).toString());
    claims = JSON.parse(b64url(parts[1]).toString());
  } catch (e) {
    return refuse('not a JWT');
  }

  if (head.alg !== 'RS256') return refuse('alg must be RS256');

  const signed = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), pubkey,
    b64url(parts[2]));
  if (!signed) return refuse('Invalid JWT Signature.');

  const now = Math.floor(Date.now() / 1000);
  if (claims.iss !== args.email) return refuse('wrong iss');
  if (claims.aud !== audience) return refuse('wrong aud');
  if (!/devstorage\.(read_write|full_control)/.test(claims.scope || '')) {
    return refuse('wrong scope');
  }
  if (Math.abs(claims.iat - now) > 300 || claims.exp - claims.iat > 3600 || claims.exp < now) {
    return refuse('Invalid JWT: Token must be a short-lived token');
  }

  return send(res, 200, JSON.stringify({
    access_token: issue(), expires_in: lifetime, token_type: 'Bearer',
  }), { 'content-type': 'application/json' });
}

function issue() {
  const token = `ya29.${crypto.randomBytes(24).toString('hex')}`;
  tokens.set(token, Date.now() + lifetime * 1000);
  stats.issued++;
  saveStats();
  return token;
}

function metadataToken(req, res) {
  if (req.headers['metadata-flavor'] !== 'Google' || req.headers['x-forwarded-for']) {
    stats.metadata_refused++;
    saveStats();
    return send(res, 403, 'Missing required header: Metadata-Flavor', { 'content-type': 'text/html' });
  }

  stats.metadata++;
  return send(res, 200, JSON.stringify({
    access_token: issue(), expires_in: lifetime, token_type: 'Bearer',
  }), { 'content-type': 'application/json', 'metadata-flavor': 'Google' });
}

function authorized(req, res) {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization || '');
  const exp = m && tokens.get(m[1]);

  if (!exp || exp < Date.now()) {
    if (exp) stats.expired++;
    stats.unauthorized++;
    saveStats();
    xml(res, 401, '<Error><Code>AuthenticationRequired</Code>'
      + '<Message>Authentication required.</Message></Error>');
    return false;
  }

  return true;
}

function walk(dir, base, out) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.isDirectory()) walk(full, rel, out);
    else if (!e.name.startsWith('.tmp-')) out.push(rel);
  }
  return out;
}

function writeObject(key, data) {
  const file = path.join(bucketDir, key);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.tmp-${crypto.randomBytes(6).toString('hex')}`);
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

function storage(req, res, body, url) {
  if (!authorized(req, res)) return;

  const segs = url.pathname.split('/');
  const bucket = segs[1];
  const key = decodeURIComponent(segs.slice(2).join('/'));
  const q = url.searchParams;

  if (bucket !== args.bucket) {
    return xml(res, 404, '<Error><Code>NoSuchBucket</Code><Message>no bucket</Message></Error>');
  }

  const file = path.join(bucketDir, key);
  const exists = key && fs.existsSync(file) && fs.statSync(file).isFile();
  const md5hex = (b) => crypto.createHash('md5').update(b).digest('hex');

  if (!key && req.method === 'GET' && q.has('uploads')) {
    const prefix = q.get('prefix') || '';
    let list = '';
    for (const id of fs.existsSync(uploadsDir) ? fs.readdirSync(uploadsDir) : []) {
      const k = fs.readFileSync(path.join(uploadsDir, id, 'key'), 'utf8');
      if (k.startsWith(prefix)) list += `<Upload><Key>${esc(k)}</Key><UploadId>${id}</UploadId></Upload>`;
    }
    return xml(res, 200, `<ListMultipartUploadsResult><Bucket>${bucket}</Bucket>${list}`
      + '<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>');
  }

  if (!key && req.method === 'GET') {
    const prefix = q.get('prefix') || '';
    const max = Math.min(Number(q.get('max-keys') || 1000), pageSize);
    const after = q.has('continuation-token')
      ? Buffer.from(q.get('continuation-token'), 'base64').toString() : '';
    const keys = walk(bucketDir, '', []).filter((k) => k.startsWith(prefix) && k > after).sort();
    const page = keys.slice(0, max);
    const truncated = keys.length > page.length;
    let body2 = `<ListBucketResult><Name>${bucket}</Name><Prefix>${esc(prefix)}</Prefix>`
      + `<KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys>`;
    for (const k of page) {
      const st = fs.statSync(path.join(bucketDir, k));
      body2 += `<Contents><Key>${esc(k)}</Key><Size>${st.size}</Size></Contents>`;
    }
    body2 += `<IsTruncated>${truncated}</IsTruncated>`;
    if (truncated) {
      body2 += `<NextContinuationToken>${Buffer.from(page[page.length - 1]).toString('base64')}`
        + '</NextContinuationToken>';
    }
    return xml(res, 200, `${body2}</ListBucketResult>`);
  }

  const precondition = req.headers['x-goog-if-generation-match'] === '0' && exists;

  if (req.method === 'POST' && q.has('uploads')) {
    const id = crypto.randomBytes(12).toString('hex');
    fs.mkdirSync(path.join(uploadsDir, id), { recursive: true });
    fs.writeFileSync(path.join(uploadsDir, id, 'key'), key);
    return xml(res, 200, `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket>`
      + `<Key>${esc(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`);
  }

  if (q.has('uploadId')) {
    const id = q.get('uploadId');
    const dir = path.join(uploadsDir, id);
    if (!/^[0-9a-f]+$/.test(id) || !fs.existsSync(dir)
        || fs.readFileSync(path.join(dir, 'key'), 'utf8') !== key) {
      return xml(res, 404, '<Error><Code>NoSuchUpload</Code><Message>no upload</Message></Error>');
    }

    if (req.method === 'PUT') {
      fs.writeFileSync(path.join(dir, String(Number(q.get('partNumber')))), body);
      return send(res, 200, '', { etag: `"${md5hex(body)}"` });
    }

    if (req.method === 'DELETE') {
      fs.rmSync(dir, { recursive: true, force: true });
      return send(res, 204, '');
    }

    if (req.method === 'POST') {
      if (precondition) {
        return xml(res, 412, '<Error><Code>PreconditionFailed</Code><Message>exists</Message></Error>');
      }
      const parts = [...body.toString().matchAll(
        /<PartNumber>(\d+)<\/PartNumber><ETag>"?([0-9a-f]+)"?<\/ETag>/g)];
      const chunks = [];
      for (const [, n, etag] of parts) {
        const p = path.join(dir, n);
        const data = fs.existsSync(p) ? fs.readFileSync(p) : null;
        if (!data || md5hex(data) !== etag) {
          return xml(res, 400, '<Error><Code>InvalidPart</Code><Message>bad part</Message></Error>');
        }
        chunks.push(data);
      }
      writeObject(key, Buffer.concat(chunks));
      fs.rmSync(dir, { recursive: true, force: true });
      return xml(res, 200, `<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket>`
        + `<Key>${esc(key)}</Key></CompleteMultipartUploadResult>`);
    }
  }

  if (req.method === 'PUT') {
    if (precondition) {
      return xml(res, 412, '<Error><Code>PreconditionFailed</Code><Message>exists</Message></Error>');
    }
    writeObject(key, body);
    return send(res, 200, '', { etag: `"${md5hex(body)}"` });
  }

  if (!exists) {
    if (req.method === 'HEAD') return send(res, 404, '');
    return xml(res, 404, '<Error><Code>NoSuchKey</Code><Message>no key</Message></Error>');
  }

  const data = fs.readFileSync(file);

  if (req.method === 'HEAD') {
    res.writeHead(200, { 'content-length': data.length });
    return res.end();
  }

  if (req.method === 'GET') {
    const r = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
    if (!r) return send(res, 200, data);
    let start;
    let end;
    if (r[1] === '') {
      start = Math.max(0, data.length - Number(r[2]));
      end = data.length - 1;
    } else {
      start = Number(r[1]);
      end = r[2] === '' ? data.length - 1 : Math.min(Number(r[2]), data.length - 1);
    }
    if (start >= data.length) {
      return xml(res, 416, '<Error><Code>InvalidRange</Code><Message>range</Message></Error>');
    }
    return send(res, 206, data.subarray(start, end + 1),
      { 'content-range': `bytes ${start}-${end}/${data.length}` });
  }

  return xml(res, 405, '<Error><Code>MethodNotAllowed</Code><Message>no</Message></Error>');
}

async function main() {
  fs.mkdirSync(bucketDir, { recursive: true });
  saveStats();

  const audience = `http://127.0.0.1:${args.port}/token`;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url, 'http://x');
      try {
        if (req.method === 'POST' && url.pathname === '/token') {
          tokenEndpoint(req, res, body, audience);
        } else if (req.method === 'GET'
                   && url.pathname === '/computeMetadata/v1/instance/service-accounts/default/token') {
          metadataToken(req, res);
        } else {
          storage(req, res, body, url);
        }
      } catch (e) {
        xml(res, 500, `<Error><Code>InternalError</Code><Message>${esc(e.message)}</Message></Error>`);
      }
    });
  });

  const port = await freePort();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));

  await startProxy({
    port: Number(args.port),
    control: Number(args.control),
    target: { host: '127.0.0.1', port },
    log: args.log,
  });

  writeReady(args.ready, { port: Number(args.port), backend: port, token_uri: audience });
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// xmlError is shared with the proxy, for symmetry of error bodies
void xmlError;
