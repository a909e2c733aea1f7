// A real OpenID provider for the identity tests (tests/src/oidc.rs, tests/tests/identity.rs):
// oidc-provider 8 (a certified implementation, tests/node/package.json) on 127.0.0.1, with the
// clients and accounts of a JSON file the test writes, PKCE (S256) required, and interaction
// endpoints of its own so that a test logs in without a browser:
//
//   GET  /interaction/:uid          a login form (the page a person would see)
//   POST /interaction/:uid/login    login=<account id>: logged in, every requested scope granted
//   POST /interaction/:uid/abort    the person cancels: the client gets error=access_denied
//
// Usage: node provider.mjs CONFIG.json [--port N]   (port also from OIDC_PORT; default: any free)
// Prints `OIDC_PROVIDER_READY <issuer>` once it listens. Exits when its stdin closes (the test
// process is gone) or on SIGTERM.
//
// CONFIG.json:
//   { "clients": [{ "client_id", "client_secret", "redirect_uris": [..], "post_logout_redirect_uris": [..] }],
//     "accounts": { "<account id>": { "sub", "email", "email_verified", "groups", "given_name",
//                   "family_name", "https://attributes.eid.gov.it/fiscal_number" } },
//     "id_token_claims": false }
// `id_token_claims: true`: the scopes' claims in the ID token, and no userinfo endpoint (a gateway
// that sends the fiscal number in the ID token alone); by default they come from userinfo only, as
// OIDC Core says for the code flow.

import http from 'node:http';
import { readFileSync } from 'node:fs';
import Provider from '../node/node_modules/oidc-provider/lib/index.js';

const FISCAL_NUMBER = 'https://attributes.eid.gov.it/fiscal_number';

const args = process.argv.slice(2);
const configPath = args.find((a) => !a.startsWith('--'));
const portAt = args.indexOf('--port');
const port = Number(portAt >= 0 ? args[portAt + 1] : process.env.OIDC_PORT || 0);
if (!configPath) {
  console.error('usage: node provider.mjs CONFIG.json [--port N]');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const accounts = config.accounts || {};

function accountBySub(sub) {
  return Object.values(accounts).find((a) => a.sub === sub);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      data += chunk;
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: (config.clients || []).map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
    ...c,
  })),
  async findAccount(ctx, sub) {
    const account = accountBySub(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      // Every claim the account has; oidc-provider keeps those the granted scopes name.
      async claims() {
        return { ...account, sub };
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'groups', FISCAL_NUMBER],
  },
  // Without a userinfo endpoint oidc-provider puts the scopes' claims in the ID token.
  conformIdTokenClaims: true,
  pkce: { methods: ['S256'], required: () => true },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
    userinfo: { enabled: !config.id_token_claims },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['sportello-test-cookie-key'] },
  // Consent is given at login (below); an existing grant of this browser's session is reused.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
  },
});

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login|\/abort)?$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const action = match[2];
  if (ctx.method === 'GET' && !action) {
    ctx.type = 'html';
    ctx.body = `<!doctype html><form method="post" action="/interaction/${details.uid}/login">` +
      `<label>Account <input name="login"></label><button>Accedi</button></form>`;
    return undefined;
  }
  if (ctx.method !== 'POST' || !action) {
    ctx.status = 405;
    return undefined;
  }
  let result;
  if (action === '/abort') {
    result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
  } else {
    const login = new URLSearchParams(await readBody(ctx.req)).get('login');
    const account = accounts[login];
    if (!account) {
      ctx.status = 400;
      ctx.body = `unknown account ${login}`;
      return undefined;
    }
    const grant = new provider.Grant({ accountId: account.sub, clientId: details.params.client_id });
    grant.addOIDCScope(String(details.params.scope || 'openid'));
    result = { login: { accountId: account.sub }, consent: { grantId: await grant.save() } };
  }
  const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.set('Location', to);
  return undefined;
});

server.on('request', provider.callback());

process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

console.log(`OIDC_PROVIDER_READY ${issuer}`);
