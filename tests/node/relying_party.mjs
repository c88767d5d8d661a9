// A relying party built on openid-client (panva, OpenID Certified), driven
// by tests/tests/e2e/rp_library.rs. It speaks to the test over stdout (one
// JSON line per step) and stdin (one JSON line per answer):
//   1. CIBA, poll mode, private_key_jwt: initiate, print the number, poll
//      until the tokens come, print the verified ID token's claims.
//   2. CIBA, ping mode, client_secret_basic: initiate with a
//      client_notification_token, wait for the ping on its own HTTP
//      endpoint, collect once, print the claims.
//   3. The code flow with PKCE, state, nonce and acr_values: print the
//      authorization URL, read back the callback URL the browser reached,
//      redeem the code, print the claims.
//   4. acr_values it cannot meet: the error the library reports.
//   5. FAPI 2.0: a signed request object pushed (JAR + PAR), private_key_jwt,
//      every token DPoP-bound (with the server's nonces), UserInfo with the
//      proof, a refresh, introspection, revocation.
import * as client from 'openid-client';
import http from 'node:http';
import readline from 'node:readline';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const issuer = new URL(env('ISSUER'));
const username = env('USERNAME');
const insecure = { execute: [client.allowInsecureRequests] };
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const input = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const answer = async () => JSON.parse((await input.next()).value);

// The RP's private key (PKCS#8 DER, base64) and its kid, as registered.
const der = Buffer.from(env('RP_KEY_PKCS8'), 'base64');
const key = await crypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
const signed = await client.discovery(issuer, env('JWT_CLIENT'), undefined,
  client.PrivateKeyJwt({ key, kid: env('RP_KEY_KID') }), insecure);

// 1. CIBA poll.
{
  const started = await client.initiateBackchannelAuthentication(signed, {
    scope: 'openid profile', login_hint: username, binding_message: 'Šalter 3', acr_values: 'urn:potvrda:loa:basic',
  });
  out({ step: 'ciba-poll', number: started.number, code: started.code ?? null });
  const tokens = await client.pollBackchannelAuthenticationGrant(signed, started);
  out({ step: 'ciba-poll-tokens', claims: tokens.claims() });
}

// 2. CIBA ping.
{
  const pings = [];
  let heard;
  const pinged = new Promise((resolve) => { heard = resolve; });
  const sink = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      pings.push({ authorization: req.headers.authorization, body: JSON.parse(body) });
      res.writeHead(204).end();
      heard();
    });
  });
  await new Promise((resolve) => sink.listen(Number(env('PING_PORT')), '127.0.0.1', resolve));
  const basic = await client.discovery(issuer, env('PING_CLIENT'), env('PING_SECRET'), undefined, insecure);
  const token = 'ping-token-' + crypto.randomUUID();
  const started = await client.initiateBackchannelAuthentication(basic, {
    scope: 'openid', login_hint: username, client_notification_token: token,
  });
  out({ step: 'ciba-ping', number: started.number, code: started.code ?? null });
  await pinged;
  sink.close();
  if (pings[0].authorization !== `Bearer ${token}` || pings[0].body.auth_req_id !== started.auth_req_id) {
    throw new Error(`a wrong ping: ${JSON.stringify(pings)}`);
  }
  const tokens = await client.pollBackchannelAuthenticationGrant(basic, started);
  out({ step: 'ciba-ping-tokens', claims: tokens.claims() });
}

// 3. The code flow with acr_values.
{
  const web = await client.discovery(issuer, env('CODE_CLIENT'), env('CODE_SECRET'), undefined, insecure);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(web, {
    redirect_uri: env('CODE_REDIRECT'), scope: 'openid profile', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    acr_values: 'urn:potvrda:loa:substantial',
  });
  out({ step: 'authorize', url: url.href });
  const back = await answer();
  const tokens = await client.authorizationCodeGrant(web, new URL(back.url), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  out({ step: 'code-tokens', claims: tokens.claims() });

  // 4. Asking for a level the login cannot prove.
  const refused = client.buildAuthorizationUrl(web, {
    redirect_uri: env('CODE_REDIRECT'), scope: 'openid', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    acr_values: 'urn:example:loa:unknown',
  });
  out({ step: 'unmet', url: refused.href });
  const error = await answer();
  try {
    await client.authorizationCodeGrant(web, new URL(error.url), { pkceCodeVerifier: verifier, expectedState: state });
    throw new Error('an unmet acr must not be redeemed');
  } catch (e) {
    out({ step: 'unmet-error', error: e.error ?? String(e) });
  }
}
// 5. FAPI 2.0.
{
  const signer = { key, kid: env('RP_KEY_KID') };
  const fapi = await client.discovery(issuer, env('FAPI_CLIENT'), undefined, client.PrivateKeyJwt(signer), insecure);
  const dpop = client.getDPoPHandle(fapi, await client.randomDPoPKeyPair('ES256'));
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const { searchParams } = await client.buildAuthorizationUrlWithJAR(fapi, {
    redirect_uri: env('FAPI_REDIRECT'), scope: 'openid profile', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  }, signer);
  const url = await client.buildAuthorizationUrlWithPAR(fapi, searchParams, { DPoP: dpop });
  out({ step: 'fapi-authorize', url: url.href });
  const back = await answer();
  const tokens = await client.authorizationCodeGrant(fapi, new URL(back.url), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  }, undefined, { DPoP: dpop });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(fapi, tokens.access_token, claims.sub, { DPoP: dpop });
  const refreshed = await client.refreshTokenGrant(fapi, tokens.refresh_token, undefined, { DPoP: dpop });
  const introspected = await client.tokenIntrospection(fapi, refreshed.access_token);
  await client.tokenRevocation(fapi, refreshed.refresh_token);
  const revoked = await client.tokenIntrospection(fapi, refreshed.access_token);
  out({
    step: 'fapi-tokens', token_type: tokens.token_type, claims, userinfo, introspected, revoked,
    refresh_kept: refreshed.refresh_token === tokens.refresh_token,
  });
}
out({ step: 'done' });
process.exit(0);
