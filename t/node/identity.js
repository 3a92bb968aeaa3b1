'use strict';

// The platforms' identity endpoints, for the credential tests, answering
// as the real services do (the recording proxy of rdx-proxy.js calls them
// before it forwards a request, so faults injected there apply to them):
//
//   sts(opts): AWS STS AssumeRoleWithWebIdentity (EKS IRSA). Unsigned; the
//     WebIdentityToken must be what the token file holds now (the test
//     rotates it), the RoleArn the expected one. Each answer is a new key
//     pair that s3rver takes until it expires, with a session token that
//     every request signed with it must carry (x-amz-security-token).
//
//   azure(opts): Entra ID's token endpoint with a client assertion (AKS
//     workload identity), App Service's identity endpoint
//     (X-IDENTITY-HEADER) and the instance metadata service (Metadata:
//     true), all for https://storage.azure.com/. Blob requests with
//     "Authorization: Bearer" pass only with a token issued here and not
//     expired; they reach Azurite with an account SAS instead.
//
// Counters in <dir>/identity.json: tokens issued, requests refused and why.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

function counter(dir) {
  const stats = { issued: 0, refused: 0, expired: 0, reasons: [] };
  const file = path.join(dir, 'identity.json');
  // renamed into place: a test reading it never sees it half written
  const save = () => {
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(stats));
    fs.renameSync(`${file}.tmp`, file);
  };
  save();
  return {
    stats,
    issued() {
      stats.issued++;
      save();
    },
    refused(why) {
      stats.refused++;
      stats.reasons.push(why);
      save();
    },
    expired() {
      stats.expired++;
      save();
    },
  };
}

function readToken(file) {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    return null;
  }
}

function json(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function xml(res, status, body) {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sts({ dir, account, roleArn, tokenFile, lifetime }) {
  const c = counter(dir);
  const sessions = new Map();

  const stsError = (res, status, code, message) => {
    c.refused(code);
    xml(res, status, '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
      + `<Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error>`
      + `<RequestId>${crypto.randomUUID()}</RequestId></ErrorResponse>`);
  };

  function assume(req, res, body) {
    const form = new URLSearchParams(body.toString());

    if (req.headers.authorization) {
      return stsError(res, 400, 'InvalidParameterValue', 'AssumeRoleWithWebIdentity is not signed');
    }
    if (form.get('Version') !== '2011-06-15' || !form.get('RoleSessionName')) {
      return stsError(res, 400, 'MissingParameter', 'Version and RoleSessionName are required');
    }
    if (form.get('RoleArn') !== roleArn) {
      return stsError(res, 403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
    }
    const expected = readToken(tokenFile);
    if (!expected || form.get('WebIdentityToken') !== expected) {
      return stsError(res, 400, 'InvalidIdentityToken', 'Couldn\'t retrieve verification key from your identity provider');
    }

    const ak = `ASIA${crypto.randomBytes(8).toString('hex').toUpperCase()}`;
    const sk = crypto.randomBytes(30).toString('base64');
    const token = `IQoJb3JpZ2luX2Vj${crypto.randomBytes(48).toString('base64')}`;
    const expires = new Date(Date.now() + lifetime * 1000);

    account.createKeyPair(ak, sk);
    sessions.set(ak, token);
    setTimeout(() => {
      account.revokeAccessKey(ak);
      sessions.delete(ak);
    }, lifetime * 1000).unref();
    c.issued();

    return xml(res, 200, '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
      + '<AssumeRoleWithWebIdentityResult>'
      + `<SubjectFromWebIdentityToken>system:serviceaccount:telemetry:reductrai</SubjectFromWebIdentityToken>`
      + `<Audience>sts.amazonaws.com</Audience>`
      + `<AssumedRoleUser><Arn>${roleArn.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/')}/${form.get('RoleSessionName')}</Arn>`
      + `<AssumedRoleId>AROA${ak.slice(4)}:${form.get('RoleSessionName')}</AssumedRoleId></AssumedRoleUser>`
      + `<Credentials><SessionToken>${token}</SessionToken><SecretAccessKey>${sk}</SecretAccessKey>`
      + `<Expiration>${expires.toISOString().replace(/\.\d+Z$/, 'Z')}</Expiration><AccessKeyId>${ak}</AccessKeyId></Credentials>`
      + '<Provider>arn:aws:iam::123456789000:oidc-provider/oidc.eks.example</Provider>'
      + '</AssumeRoleWithWebIdentityResult>'
      + `<ResponseMetadata><RequestId>${crypto.randomUUID()}</RequestId></ResponseMetadata>`
      + '</AssumeRoleWithWebIdentityResponse>');
  }

  // true when answered here; S3 requests signed with a temporary key must
  // carry its session token, as S3 wants
  return function intercept(req, res, body) {
    if (req.method === 'POST' && req.url === '/'
        && /AssumeRoleWithWebIdentity/.test(body.toString())) {
      assume(req, res, body);
      return true;
    }

    const m = /Credential=(ASIA[0-9A-F]+)\//.exec(req.headers.authorization || '');
    if (m && sessions.has(m[1]) && req.headers['x-amz-security-token'] !== sessions.get(m[1])) {
      c.refused('InvalidToken');
      xml(res, 400, '<Error><Code>InvalidToken</Code><Message>The provided token is malformed or otherwise invalid.</Message></Error>');
      return true;
    }
    if (m && !sessions.has(m[1])) c.expired();

    return false;
  };
}

function azure({ dir, tenant, clientId, tokenFile, identityHeader, lifetime, sas }) {
  const c = counter(dir);
  const tokens = new Map();
  const RESOURCE = 'https://storage.azure.com/';

  const issue = () => {
    const token = `eyJ0eXAiOiJKV1Qi.${crypto.randomBytes(32).toString('base64url')}.sig`;
    tokens.set(token, Date.now() + lifetime * 1000);
    c.issued();
    return token;
  };

  const refuse = (res, status, error, description) => {
    c.refused(error);
    json(res, status, { error, error_description: description });
  };

  function workload(req, res, body, t) {
    const form = new URLSearchParams(body.toString());
    const expected = readToken(tokenFile);

    if (t !== tenant) return refuse(res, 400, 'invalid_request', `AADSTS90002: Tenant '${t}' not found.`);
    if (form.get('grant_type') !== 'client_credentials'
        || form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      return refuse(res, 400, 'invalid_request', 'AADSTS900144: bad grant');
    }
    if (form.get('scope') !== `${RESOURCE}.default`) {
      return refuse(res, 400, 'invalid_scope', 'AADSTS70011: The provided value for scope is not valid.');
    }
    if (form.get('client_id') !== clientId) {
      return refuse(res, 400, 'unauthorized_client', `AADSTS700016: Application with identifier '${form.get('client_id')}' was not found.`);
    }
    if (!expected || form.get('client_assertion') !== expected) {
      // quotes what it was sent, as a verbose endpoint (or a proxy's error page) may
      return refuse(res, 401, 'invalid_client', `AADSTS700024: Client assertion ${form.get('client_assertion')} is not within its valid time range.`);
    }
    return json(res, 200, {
      token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: issue(),
    });
  }

  function managed(req, res, url, appService) {
    const q = url.searchParams;
    const now = Math.floor(Date.now() / 1000);

    if (appService) {
      if (req.headers['x-identity-header'] !== identityHeader) {
        return refuse(res, 401, 'unauthorized', 'X-IDENTITY-HEADER is missing or wrong');
      }
      if (q.get('api-version') !== '2019-08-01') return refuse(res, 400, 'invalid_request', 'api-version');
    } else {
      if (req.headers.metadata !== 'true') return refuse(res, 400, 'invalid_request', 'Required metadata header not specified');
      if (q.get('api-version') !== '2018-02-01') return refuse(res, 400, 'invalid_request', 'api-version');
    }
    if (q.get('resource') !== RESOURCE) return refuse(res, 400, 'invalid_resource', 'resource');
    if (q.has('client_id') && q.get('client_id') !== clientId) {
      return refuse(res, 400, 'invalid_request', 'Identity not found');
    }
    const token = issue();
    // both answer numbers as strings; App Service gives no expires_in
    return json(res, 200, appService
      ? { access_token: token, expires_on: String(now + lifetime), resource: RESOURCE, token_type: 'Bearer', client_id: clientId }
      : {
        access_token: token, expires_in: String(lifetime), expires_on: String(now + lifetime), ext_expires_in: String(lifetime),
        not_before: String(now), resource: RESOURCE, token_type: 'Bearer', client_id: clientId,
      });
  }

  return function intercept(req, res, body) {
    const url = new URL(req.url, 'http://x');
    const w = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);

    if (req.method === 'POST' && w) {
      workload(req, res, body, w[1]);
      return true;
    }
    if (req.method === 'GET' && url.pathname === '/msi/token') {
      managed(req, res, url, true);
      return true;
    }
    if (req.method === 'GET' && url.pathname === '/metadata/identity/oauth2/token') {
      managed(req, res, url, false);
      return true;
    }

    const m = /^Bearer (\S+)$/.exec(req.headers.authorization || '');
    if (!m) return false;

    const exp = tokens.get(m[1]);
    const version = req.headers['x-ms-version'] || '';
    if (!exp || exp < Date.now() || version < '2017-11-09') {
      if (exp && exp < Date.now()) c.expired();
      c.refused(exp ? 'expired' : 'unknown token');
      xml(res, 401, '<Error><Code>InvalidAuthenticationInfo</Code>'
        + '<Message>Authentication information is not given in the correct format.</Message></Error>');
      return true;
    }

    // the token is good: Azurite gets the request with the account's SAS
    delete req.headers.authorization;
    req.url += `${req.url.includes('?') ? '&' : '?'}${sas}`;
    return false;
  };
}

module.exports = { sts, azure };
