'use strict';

// A recording proxy for the storage tests, in front of a protocol server
// (s3rver, Azurite, the fake GCS). For every request it writes one JSON
// line to the log: method, URL, headers, body length, SHA-256 and MD5 of
// the body, the answer's status and error code. Like the real services,
// it refuses a body whose x-amz-content-sha256 or Content-MD5 does not
// match (s3rver and Azurite do not check them all). A control port takes
// POST /down, /up (stop and resume accepting, as a store that goes away),
// /fault (answer matching requests with a status, hang them, or reset the
// connection) and /clear. An intercept(req, res, body) given by the server
// (identity.js) runs after the faults: it answers a request itself
// (returns true) or may rewrite its URL and headers before it is forwarded.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');

function xmlError(code, message) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

function startProxy({
  port, target, log, control, digestCode = 'BadDigest', intercept = null,
}) {
  const state = { faults: [], sockets: new Set(), hung: new Set(), up: true };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  const write = (rec) => fs.appendFileSync(log, `${JSON.stringify(rec)}\n`);

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  });

  server.on('connection', (s) => {
    state.sockets.add(s);
    s.on('close', () => state.sockets.delete(s));
  });

  function answer(res, rec, status, code, message) {
    rec.status = status;
    rec.code = code;
    write(rec);
    const body = xmlError(code, message);
    res.writeHead(status, {
      'content-type': 'application/xml',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }

  function handle(req, res, body) {
    const rec = {
      t: Date.now(),
      method: req.method,
      url: req.url,
      headers: { ...req.headers },
      len: body.length,
      sha256: crypto.createHash('sha256').update(body).digest('hex'),
      md5: crypto.createHash('md5').update(body).digest('base64'),
    };

    const line = `${req.method} ${req.url}`;
    const fault = state.faults.find((f) => f.count !== 0 && new RegExp(f.match).test(line));

    if (fault) {
      if (fault.count > 0) fault.count--;
      rec.fault = fault.action;

      if (fault.action === 'hang') {
        write(rec);
        state.hung.add(res);
        res.on('close', () => state.hung.delete(res));
        return;
      }

      if (fault.action === 'reset') {
        write(rec);
        req.socket.destroy();
        return;
      }

      return answer(res, rec, fault.status || 500, fault.code || 'InternalError', 'injected by the test');
    }

    if (intercept) {
      res.on('finish', () => {
        if (rec.status === undefined) {
          rec.status = res.statusCode;
          rec.intercepted = true;
          write(rec);
        }
      });
      if (intercept(req, res, body)) return;
    }

    const sha = req.headers['x-amz-content-sha256'];
    if (sha && /^[0-9a-fA-F]{64}$/.test(sha) && sha.toLowerCase() !== rec.sha256) {
      return answer(res, rec, 400, 'XAmzContentSHA256Mismatch',
        'The provided x-amz-content-sha256 header does not match what was computed.');
    }

    const md5 = req.headers['content-md5'];
    if (md5 !== undefined && md5 !== rec.md5) {
      return answer(res, rec, 400, digestCode,
        'The Content-MD5 you specified did not match what we received.');
    }

    const headers = { ...req.headers };
    delete headers.expect;
    delete headers.connection;

    const up = http.request(
      { host: target.host, port: target.port, method: req.method, path: req.url, headers, agent },
      (ures) => {
        const rchunks = [];
        ures.on('data', (c) => rchunks.push(c));
        ures.on('end', () => {
          const rb = Buffer.concat(rchunks);
          rec.status = ures.statusCode;
          if (ures.statusCode >= 300) {
            const m = rb.toString().match(/<Code>([^<]*)<\/Code>/);
            if (m) rec.code = m[1];
          }
          write(rec);

          const out = { ...ures.headers };
          delete out['transfer-encoding'];
          delete out.connection;
          delete out['keep-alive'];
          if (req.method !== 'HEAD') out['content-length'] = rb.length;
          res.writeHead(ures.statusCode, out);
          res.end(req.method === 'HEAD' ? undefined : rb);
        });
      }
    );

    up.on('error', (e) => {
      rec.status = 502;
      rec.error = e.message;
      write(rec);
      res.writeHead(502, { 'content-length': 0 });
      res.end();
    });

    up.end(body);
  }

  function goDown() {
    if (!state.up) return;
    state.up = false;
    server.close();
    for (const s of state.sockets) s.destroy();
    for (const r of state.hung) r.destroy();
  }

  function goUp() {
    if (state.up) return Promise.resolve();
    state.up = true;
    return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  }

  const ctl = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const text = Buffer.concat(chunks).toString();
      try {
        switch (req.url) {
          case '/down':
            goDown();
            break;
          case '/up':
            await goUp();
            break;
          case '/fault':
            state.faults.push(JSON.parse(text));
            break;
          case '/clear':
            state.faults = [];
            for (const r of state.hung) r.destroy();
            break;
          case '/hung':
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end(String(state.hung.size));
            return;
          default:
            res.writeHead(404);
            res.end();
            return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(e.message);
      }
    });
  });

  return Promise.all([
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    }),
    new Promise((resolve, reject) => {
      ctl.once('error', reject);
      ctl.listen(control, '127.0.0.1', resolve);
    }),
  ]).then(() => ({ server, ctl, goDown, goUp }));
}

// --name value arguments into an object (a repeated name keeps its last value)
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    out[k] = argv[i + 1];
  }
  return out;
}

function writeReady(file, info) {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(info));
  fs.renameSync(`${file}.tmp`, file);
}

// a port free now on 127.0.0.1, for a server started behind the proxy
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

module.exports = { startProxy, parseArgs, writeReady, xmlError, freePort };
