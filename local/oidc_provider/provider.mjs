// The local OpenID provider for `make run` and the tests: panva's oidc-provider (OpenID Certified), in memory.
//
// Started by local/identity_provider.py, never through a shell. Settings come as arguments, the client secret from the
// environment (OIDC_CLIENT_SECRET: arguments are visible to every user in `ps`):
//
//   node provider.mjs --port 3008 --client-id sso-bridge-local \
//     --redirect-uri http://localhost:3000/oidc/callback [--redirect-uri ...] \
//     [--post-logout-redirect-uri http://localhost:3000/] [--host 127.0.0.1] [--issuer http://localhost:3008] \
//     [--id-token-alg RS256|ES256] [--accounts '<JSON list of {"email", "email_verified", "name"?}>']
//
// Who signs in: the development login page (devInteractions) takes any login and any password. The login, as
// typed, is the account (`sub`); trimmed and lower-cased, with "@example.com" added when it has no "@", it is the
// email. An account listed in --accounts gets its email_verified and name from there (by default Jane, verified,
// and Mallory, unverified); any other login is a verified email with no name.
//
// Like the providers it stands in for, it follows the spec strictly: the ID token holds `sub` only, and email,
// email_verified and name come from the userinfo endpoint (conformIdTokenClaims). RFC 9207's `iss` is always
// sent with the code (discovery says authorization_response_iss_parameter_supported; oidc-provider 9 has no
// switch for it any more). Consent is granted for the one client without asking, as a company's provider does
// for its own applications. Keys (signing and cookies) are made at start: every restart signs anew.
//
// Its pages load nothing from the internet (oidc-provider's import a web font: dropped here), and its login
// page lists the accounts.
//
// Output: one JSON line per request on stdout ({"method", "path", "status", "route", "error"}: never a query,
// header, token or secret; ids in paths are masked), and {"ready": "<issuer>"} once it listens.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const DEFAULT_ACCOUNTS = [
  { email: 'jane@example.com', email_verified: true, name: 'Jane Doe' },
  { email: 'mallory@example.com', email_verified: false, name: 'Mallory' },
];

function fail(message) {
  process.stderr.write(`oidc provider: ${message}\n`);
  process.exit(2);
}

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string' },
        issuer: { type: 'string' },
        'client-id': { type: 'string', default: 'sso-bridge-local' },
        'redirect-uri': { type: 'string', multiple: true },
        'post-logout-redirect-uri': { type: 'string', multiple: true, default: [] },
        'id-token-alg': { type: 'string', default: 'RS256' },
        accounts: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    fail(error.message);
  }
  const port = Number(parsed.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail('--port must be a port number');
  if (!parsed['redirect-uri']?.length) fail('--redirect-uri is required (one per bridge origin)');
  if (!['RS256', 'ES256'].includes(parsed['id-token-alg'])) fail('--id-token-alg must be RS256 or ES256');
  const secret = process.env.OIDC_CLIENT_SECRET ?? '';
  if (secret.length < 16) fail('OIDC_CLIENT_SECRET must be set (16 characters or more)');
  let accounts = DEFAULT_ACCOUNTS;
  if (parsed.accounts !== undefined) {
    try {
      accounts = JSON.parse(parsed.accounts);
    } catch {
      fail('--accounts must be JSON');
    }
    const valid = Array.isArray(accounts) && accounts.every((account) => typeof account?.email === 'string'
      && typeof account.email_verified === 'boolean' && ['string', 'undefined'].includes(typeof account.name));
    if (!valid) fail('--accounts must be a list of {"email": str, "email_verified": bool, "name"?: str}');
  }
  return {
    host: parsed.host,
    port,
    issuer: parsed.issuer ?? `http://localhost:${port}`,
    clientId: parsed['client-id'],
    secret,
    redirectUris: parsed['redirect-uri'],
    postLogoutRedirectUris: parsed['post-logout-redirect-uri'],
    idTokenAlg: parsed['id-token-alg'],
    accounts: new Map(accounts.map((account) => [account.email.trim().toLowerCase(), account])),
  };
}

function emailFor(login) {
  const email = String(login).trim().toLowerCase();
  return email.includes('@') ? email : `${email}@example.com`;
}

function signingKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: `rs-${randomUUID().slice(0, 8)}`, alg: 'RS256', use: 'sig' },
    { ...ec, kid: `es-${randomUUID().slice(0, 8)}`, alg: 'ES256', use: 'sig' },
  ];
}

// Interaction and resume ids in paths are handles to a sign-in in progress: kept out of the log.
function maskedPath(path) {
  return path.replace(/\/(interaction|auth)\/[^/]+/, '/$1/:id').slice(0, 120);
}

const WEB_FONT = /@import url\(https:\/\/fonts\.googleapis\.com\/[^)]*\);?/g;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function loginHelp(accounts) {
  const known = [...accounts.values()].map((account) => {
    const login = escapeHtml(account.email.replace(/@example\.com$/, ''));
    const verified = account.email_verified ? 'verified' : 'not verified';
    return `<strong>${login}</strong> (${escapeHtml(account.email)}, ${verified})`;
  });
  return `<p class="login-help">Local provider: log in as ${known.join(' or ')}, with any password. `
    + 'Any other login is that email (@example.com added when bare), verified.</p>';
}

// Offline pages: no web font. The login page: who to log in as.
function localPage(ctx, help) {
  if (typeof ctx.body !== 'string' || !ctx.type?.includes('html')) return;
  let body = ctx.body.replace(WEB_FONT, '');
  if (body.includes('name="login"')) body = body.replace('</form>', `</form>${help}`);
  ctx.body = body;
}

function configuration(settings) {
  return {
    clients: [
      {
        client_id: settings.clientId,
        client_secret: settings.secret,
        redirect_uris: settings.redirectUris,
        post_logout_redirect_uris: settings.postLogoutRedirectUris,
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: settings.idTokenAlg,
      },
    ],
    jwks: { keys: signingKeys() },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    scopes: ['openid', 'email', 'profile'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    async findAccount(ctx, sub) {
      const email = emailFor(sub);
      const known = settings.accounts.get(email);
      return {
        accountId: sub,
        async claims() {
          const claims = { sub, email, email_verified: known ? known.email_verified : true };
          if (known?.name) claims.name = known.name;
          return claims;
        },
      };
    },
    async loadExistingGrant(ctx) {
      const { client, session, result } = ctx.oidc;
      const grantId = result?.consent?.grantId || session.grantIdFor(client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope('openid email profile');
      await grant.save();
      return grant;
    },
  };
}

function main() {
  const settings = options();
  const provider = new Provider(settings.issuer, configuration(settings));
  const help = loginHelp(settings.accounts);
  provider.use(async (ctx, next) => {
    let error;
    try {
      await next();
      localPage(ctx, help);
    } finally {
      error = ctx.oidc?.body?.error ?? ctx.body?.error;
      const line = {
        method: ctx.method,
        path: maskedPath(ctx.path),
        status: ctx.status,
        route: ctx.oidc?.route ?? null,
        error: typeof error === 'string' && /^[a-z_]{1,40}$/.test(error) ? error : null,
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  });
  // Errors are answered to the client; the stack prints the line above, so no stack traces here.
  provider.on('server_error', (ctx, error) => process.stderr.write(`oidc provider: server error: ${error.message}\n`));
  const server = provider.listen(settings.port, settings.host, () => {
    process.stdout.write(`${JSON.stringify({ ready: settings.issuer })}\n`);
  });
  server.on('error', (error) => fail(`cannot listen on ${settings.host}:${settings.port}: ${error.code ?? error.message}`));
  // Everything is in memory: nothing to flush, and open keep-alive connections must not hold the stop up.
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  // The stack holds our stdin: when it goes away (killed, crashed), so do we.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

main();
