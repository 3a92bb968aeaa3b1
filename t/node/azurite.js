'use strict';

// Starts Azurite's Blob service (Shared Key and SAS verified) with one
// account and one container, behind the recording proxy:
//
//   node t/node/azurite.js --port P --control C --dir DIR --account A
//        --key BASE64 --container NAME --log FILE --ready FILE
//
//        [--tenant T --client-id C --federated-token-file F
//         --identity-header H --lifetime S]
//
// With --tenant, the identity endpoints of t/node/identity.js answer on
// the same port and blob requests may carry their bearer tokens.
//
// The ready file also carries account SAS tokens made with the key: "sas"
// (read, write, list, create) and "sas_write" (create and write only).
// The container is created with a Shared Key request signed here, in
// JavaScript, independently of the module's C code.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');

const { startProxy, parseArgs, writeReady, freePort } = require('./rdx-proxy');
const identity = require('./identity');

const args = parseArgs(process.argv.slice(2));
const VERSION = '2021-08-06';

function waitPort(port, ms) {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`azurite did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function hmac(text) {
  return crypto.createHmac('sha256', Buffer.from(args.key, 'base64')).update(text, 'utf8').digest('base64');
}

function createContainer(port) {
  const date = new Date().toUTCString();
  const urlPath = `/${args.account}/${args.container}`;
  const sts = [
    'PUT', '', '', '', '', '', '', '', '', '', '', '',
    `x-ms-date:${date}`, `x-ms-version:${VERSION}`,
    `/${args.account}${urlPath}\nrestype:container`,
  ].join('\n');

  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'PUT',
      path: `${urlPath}?restype=container`,
      headers: {
        'x-ms-date': date,
        'x-ms-version': VERSION,
        'content-length': 0,
        authorization: `SharedKey ${args.account}:${hmac(sts)}`,
      },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 201 || res.statusCode === 409
        ? resolve()
        : reject(new Error(`create container: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

function accountSas(permissions) {
  const v = {
    ss: 'b', srt: 'sco', sp: permissions, se: '2099-01-01T00:00:00Z', spr: 'https,http', sv: VERSION,
  };
  const sts = [args.account, v.sp, v.ss, v.srt, '', v.se, '', v.spr, v.sv, '', ''].join('\n');
  return `sv=${v.sv}&ss=${v.ss}&srt=${v.srt}&sp=${v.sp}&se=${encodeURIComponent(v.se)}`
    + `&spr=${encodeURIComponent(v.spr)}&sig=${encodeURIComponent(hmac(sts))}`;
}

async function main() {
  const dir = path.resolve(args.dir);
  fs.mkdirSync(dir, { recursive: true });

  const port = await freePort();
  const main = require.resolve('azurite/dist/src/blob/main.js');

  const child = spawn(process.execPath, [
    main, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', dir,
    '--silent', '--disableTelemetry', '--skipApiVersionCheck',
  ], {
    env: { ...process.env, AZURITE_ACCOUNTS: `${args.account}:${args.key}` },
    stdio: ['ignore', 'inherit', 'inherit'],
  });

  const stop = () => {
    child.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  child.on('exit', (code) => {
    console.error(`azurite exited (${code})`);
    process.exit(1);
  });

  await waitPort(port, 30000);
  await createContainer(port);

  await startProxy({
    port: Number(args.port),
    control: Number(args.control),
    target: { host: '127.0.0.1', port },
    log: args.log,
    digestCode: 'Md5Mismatch',
    intercept: args.tenant ? identity.azure({
      dir,
      tenant: args.tenant,
      clientId: args['client-id'],
      tokenFile: args['federated-token-file'],
      identityHeader: args['identity-header'],
      lifetime: Number(args.lifetime || 3600),
      sas: accountSas('rwlc'),
    }) : null,
  });

  writeReady(args.ready, {
    port: Number(args.port),
    backend: port,
    sas: accountSas('rwlc'),
    sas_write: accountSas('wc'),
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
