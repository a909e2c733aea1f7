//! The OpenID Connect relying party (docs/identity.md): the provider's metadata from discovery,
//! kept a few minutes; the authorization request (code flow, PKCE S256, state, nonce); the code
//! exchange and the ID token's verification — signature against the provider's JWKS, issuer,
//! audience, expiry, nonce, and the access token's hash when the token carries one —; userinfo;
//! the end-session URL. The only module that knows `openidconnect`; the handlers in
//! `api/identity.rs` see [`VerifiedLogin`] and plain errors.
//!
//! Tokens never reach a log or an error message: errors carry the provider's error code or what
//! failed, never a response body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, Client, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse,
    TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How long discovered metadata (endpoints and signing keys) is reused: a provider's rotated key
/// is picked up within this time.
const METADATA_TTL: Duration = Duration::from_secs(300);
/// Every request to a provider (discovery, JWKS, token, userinfo).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Claims beyond the standard ones (groups, roles, the eID fiscal number …), as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Extra {
    #[serde(flatten)]
    claims: Map<String, Value>,
}

impl AdditionalClaims for Extra {}

type Fields = IdTokenFields<
    Extra,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<Fields, CoreTokenType>;
type Metadata = ProviderMetadataWithLogout;
type RelyingParty = Client<
    Extra,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A provider as configured: who it is and who we are to it.
#[derive(Debug, Clone, Copy)]
pub struct Provider<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// Empty: a public client (PKCE alone).
    pub client_secret: &'a str,
}

/// What failed; the text names the step and the provider's error code, never a token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("discovery of {issuer} failed: {detail}")]
    Discovery { issuer: String, detail: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error("code exchange refused: {0}")]
    Exchange(String),
    #[error("ID token refused: {0}")]
    IdToken(String),
}

/// Where to send the browser, and what the callback will need (stored, never sent but `state`).
pub struct Authorization {
    pub url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A login the provider vouched for: the ID token verified, its claims and userinfo's merged
/// (the ID token's win; userinfo fills what it lacks).
#[derive(Debug, Clone)]
pub struct VerifiedLogin {
    pub issuer: String,
    pub subject: String,
    pub claims: Map<String, Value>,
}

impl VerifiedLogin {
    /// A claim as text (strings only).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
    }

    /// `email_verified` as the provider said it (`None`: not said).
    pub fn email_verified(&self) -> Option<bool> {
        match self.claims.get("email_verified") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
    }
}

/// The relying party: one HTTP client (no redirects followed: a provider's answer is never a
/// hop to elsewhere) and the metadata cache.
pub struct Oidc {
    /// `None` if the TLS stack could not be set up (every login then fails as `provider`; a
    /// default client, which follows redirects, is never used instead).
    http: Option<openidconnect::reqwest::Client>,
    metadata: Mutex<HashMap<String, (Instant, Arc<Metadata>)>>,
}

impl Default for Oidc {
    fn default() -> Oidc {
        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT)
            .build()
            .inspect_err(|error| tracing::error!(%error, "no HTTP client for OpenID providers"))
            .ok();
        Oidc { http, metadata: Mutex::default() }
    }
}

impl Oidc {
    /// The provider's metadata from `<issuer>/.well-known/openid-configuration` (its issuer must
    /// be `issuer` exactly) and its JWKS; reused for [`METADATA_TTL`].
    async fn metadata(&self, issuer: &str) -> Result<Arc<Metadata>, OidcError> {
        let cached = self.metadata.lock().ok().and_then(|m| m.get(issuer).cloned());
        if let Some((at, metadata)) = cached
            && at.elapsed() < METADATA_TTL
        {
            return Ok(metadata);
        }
        let failed = |detail: String| OidcError::Discovery { issuer: issuer.to_owned(), detail };
        let issuer_url = IssuerUrl::new(issuer.to_owned()).map_err(|e| failed(e.to_string()))?;
        let metadata = Arc::new(
            Metadata::discover_async(issuer_url, self.http()?).await.map_err(|e| failed(discovery_error(&e)))?,
        );
        if let Ok(mut cache) = self.metadata.lock() {
            cache.retain(|_, (at, _)| at.elapsed() < METADATA_TTL);
            cache.insert(issuer.to_owned(), (Instant::now(), Arc::clone(&metadata)));
        }
        Ok(metadata)
    }

    fn http(&self) -> Result<&openidconnect::reqwest::Client, OidcError> {
        self.http.as_ref().ok_or_else(|| OidcError::Config("no HTTP client (TLS stack unavailable)".into()))
    }

    /// Drops `issuer`'s cached metadata: the next use discovers again.
    fn forget(&self, issuer: &str) {
        if let Ok(mut cache) = self.metadata.lock() {
            cache.remove(issuer);
        }
    }

    fn client(metadata: &Metadata, provider: Provider<'_>, redirect_uri: &str) -> Result<RelyingParty, OidcError> {
        let secret = (!provider.client_secret.is_empty()).then(|| ClientSecret::new(provider.client_secret.to_owned()));
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| OidcError::Config(e.to_string()))?;
        let client = RelyingParty::from_provider_metadata(
            metadata.clone(),
            ClientId::new(provider.client_id.to_owned()),
            secret,
        )
        .set_redirect_uri(redirect);
        // HTTP Basic unless the provider takes the secret in the body only (RFC 8414 default: basic).
        let methods = metadata.token_endpoint_auth_methods_supported();
        let post_only = methods.is_some_and(|m| {
            m.contains(&CoreClientAuthMethod::ClientSecretPost) && !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
        });
        Ok(if post_only { client.set_auth_type(AuthType::RequestBody) } else { client })
    }

    /// The authorization request for `scopes` (besides `openid`), with a fresh state, nonce and
    /// PKCE S256 challenge.
    pub async fn authorize(
        &self,
        provider: Provider<'_>,
        redirect_uri: &str,
        scopes: &[&str],
    ) -> Result<Authorization, OidcError> {
        let metadata = self.metadata(provider.issuer).await?;
        let client = Oidc::client(&metadata, provider, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request =
            client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random);
        for scope in scopes.iter().filter(|s| **s != "openid") {
            request = request.add_scope(Scope::new((*scope).to_owned()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Authorization {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges `code` with the PKCE verifier, verifies the ID token (nonce included) and reads
    /// userinfo when the provider has the endpoint (a failure there leaves the ID token's claims).
    pub async fn finish(
        &self,
        provider: Provider<'_>,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<VerifiedLogin, OidcError> {
        let metadata = self.metadata(provider.issuer).await?;
        let client = Oidc::client(&metadata, provider, redirect_uri)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(self.http()?)
            .await
            .map_err(|e| OidcError::Exchange(token_error(&e)))?;
        let id_token = tokens.id_token().ok_or_else(|| OidcError::IdToken("the token response has none".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let verified = |client: &RelyingParty| -> Result<_, ClaimsVerificationError> {
            let verifier = client.id_token_verifier();
            let claims = id_token.claims(&verifier, &nonce)?.clone();
            let key = id_token.signing_key(&verifier).ok().cloned();
            Ok((claims, key))
        };
        let (claims, key) = match verified(&client) {
            Ok(verified) => verified,
            // A key the cached JWKS does not have: the provider rotated its keys. Once more with
            // fresh metadata (the token response is still in hand; the code is spent).
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                self.forget(provider.issuer);
                let fresh = self.metadata(provider.issuer).await?;
                verified(&Oidc::client(&fresh, provider, redirect_uri)?)
                    .map_err(|e| OidcError::IdToken(e.to_string()))?
            }
            Err(error) => return Err(OidcError::IdToken(error.to_string())),
        };
        if let Some(expected) = claims.access_token_hash() {
            let algorithm = id_token.signing_alg().map_err(|e| OidcError::IdToken(e.to_string()))?;
            let key = key.ok_or_else(|| OidcError::IdToken("no key for the access token's hash".into()))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), algorithm, &key)
                .map_err(|e| OidcError::IdToken(e.to_string()))?;
            if actual != *expected {
                return Err(OidcError::IdToken("at_hash does not match the access token".into()));
            }
        }
        let subject = claims.subject().clone();
        let mut merged = as_map(&claims);
        if let Ok(request) = client.user_info(tokens.access_token().clone(), Some(subject.clone())) {
            match request.request_async::<Extra, _, CoreGenderClaim>(self.http()?).await {
                Ok(info) => add_missing(&mut merged, &info),
                Err(error) => tracing::warn!(%error, "userinfo not read: the ID token's claims alone"),
            }
        }
        Ok(VerifiedLogin { issuer: provider.issuer.to_owned(), subject: subject.as_str().to_owned(), claims: merged })
    }

    /// The provider's end-session URL (RP-initiated logout) with our client id and where to come
    /// back; `None` when the provider advertises none.
    pub async fn end_session_url(
        &self,
        provider: Provider<'_>,
        post_logout_redirect_uri: &str,
    ) -> Result<Option<url::Url>, OidcError> {
        let metadata = self.metadata(provider.issuer).await?;
        let Some(endpoint) = metadata.additional_metadata().end_session_endpoint.clone() else { return Ok(None) };
        let back = PostLogoutRedirectUrl::new(post_logout_redirect_uri.to_owned())
            .map_err(|e| OidcError::Config(e.to_string()))?;
        Ok(Some(
            LogoutRequest::from(endpoint)
                .set_client_id(ClientId::new(provider.client_id.to_owned()))
                .set_post_logout_redirect_uri(back)
                .http_get_url(),
        ))
    }
}

/// Claims as JSON, by the names the provider used (standard and additional alike).
fn as_map(claims: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Userinfo's claims, where the ID token had none of that name.
fn add_missing(merged: &mut Map<String, Value>, info: &UserInfoClaims<Extra, CoreGenderClaim>) {
    for (name, value) in as_map(info) {
        merged.entry(name).or_insert(value);
    }
}

/// What went wrong in discovery, without the response body.
fn discovery_error<E: std::error::Error>(error: &openidconnect::DiscoveryError<E>) -> String {
    use openidconnect::DiscoveryError as D;
    match error {
        D::Request(e) => format!("request failed: {e}"),
        D::Response(status, _, _) => format!("HTTP {status}"),
        D::Parse(e) => format!("unreadable metadata at {}: {}", e.path(), e.inner()),
        D::UrlParse(e) => format!("bad URL: {e}"),
        D::Validation(e) => format!("invalid metadata: {e}"),
        D::Other(detail) => detail.clone(),
        _ => "discovery failed".to_owned(),
    }
}

/// What went wrong at the token endpoint: the provider's error code, never the body (it may hold
/// tokens).
fn token_error<E: std::error::Error>(
    error: &RequestTokenError<E, StandardErrorResponse<CoreErrorResponseType>>,
) -> String {
    match error {
        RequestTokenError::ServerResponse(response) => format!("the provider said {}", response.error()),
        RequestTokenError::Request(e) => format!("request failed: {e}"),
        RequestTokenError::Parse(e, _) => format!("unreadable token response at {}", e.path()),
        RequestTokenError::Other(detail) => detail.clone(),
    }
}
